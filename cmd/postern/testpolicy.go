//go:build postern_testpolicy

package main

import "os"

// The CLI tests build a postern without the race detector for their
// scripts (main_test.go, plainBin) with this tag, so that it reads the
// scripts' stand-ins as the test binary does: POSTERN_TEST_POLICY for the
// system policy file, and POSTERN_TEST_KDF (testKDFFromEnv). Release
// builds never set the tag (.ci/release): the postern users run reads only
// the system file and always makes key files at the default cost.
func init() {
	testPolicyPath = os.Getenv("POSTERN_TEST_POLICY")
	testKDF = testKDFFromEnv()
}
