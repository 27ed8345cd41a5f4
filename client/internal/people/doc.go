// Package people owns persons' signed device lists and the transparency
// checks that make them trustworthy (protocol/SPEC.md section 8 "Device
// lists", section 10 "Key transparency", section 9 "Local state"): it
// pins each relay's log key on first use, verifies a relay's device-list
// answer with keys/kt, keeps the newest signed tree head per relay and the
// newest verified list per person, and refuses an older head, a forked
// log, a swapped list or an older list version (rollback) without
// changing anything. It works inside the caller's store transaction and
// knows nothing of connections: the client fetches, this package decides.
package people
