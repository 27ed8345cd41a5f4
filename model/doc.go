// Package model holds the SPIN model of the team-queue claim protocol
// (claim.pml) and the test that checks it with the model checker.
//
// The model is the protocol the client's team queues implement: a
// compare-and-set register per conversation on the relay, state changes
// sent to every staff device as team messages, staff removal by replacing
// the claim space's write capability, and relay restarts. README.md says
// the protocol in words, what is modelled and what is not, how to run the
// checker by hand, and the size of each check.
//
// There is no Go code here: the test builds the checker from claim.pml
// with Debian's spin and a C compiler, runs it, and fails on any property
// violation. It also checks that pan finds the violation in each broken
// variant of the protocol, so that the check can fail, and that the runs
// it explores contain the events the properties are about (races lost,
// capabilities refused, answers lost in a restart, reassignments,
// reopens, late and repeated team messages).
package model
