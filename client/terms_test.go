package client

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/relay/relaytest"
)

// The terms of use: never accepted on a new home; accepted with version
// and time, kept in the store across a reopen; withdrawn with its time
// (the acceptance kept with it); accepted again, the withdrawal cleared; a
// newer version is not accepted by an older one.
func TestTerms(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	c, home := newTestClient(t, srv, "alice")
	if tm, err := c.Terms(); err != nil || tm != (Terms{}) || tm.AcceptedCurrent("2026-12-07") {
		t.Fatalf("a new home: %+v, %v", tm, err)
	}
	if _, err := c.WithdrawTerms(); err != nil {
		t.Fatal(err)
	}
	if tm, _ := c.Terms(); tm != (Terms{}) {
		t.Fatalf("withdrawing what was never accepted recorded %+v", tm)
	}
	for _, bad := range []string{"", strings.Repeat("v", 65), "\xff"} {
		if _, err := c.AcceptTerms(bad); !errors.Is(err, ErrTermsVersion) {
			t.Fatalf("version %q: %v", bad, err)
		}
	}
	before := time.Now().Add(-time.Second)
	acc, err := c.AcceptTerms("2026-12-07")
	if err != nil {
		t.Fatal(err)
	}
	if acc.Version != "2026-12-07" || acc.Accepted.Before(before) || acc.Accepted.After(time.Now()) || !acc.Withdrawn.IsZero() {
		t.Fatalf("accepted: %+v", acc)
	}
	c.Close()
	c2, err := Open(home, testPass, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	tm, err := c2.Terms()
	if err != nil || !tm.Accepted.Equal(acc.Accepted) || tm.Version != acc.Version || !tm.AcceptedCurrent("2026-12-07") {
		t.Fatalf("after reopening: %+v, %v; want %+v", tm, err, acc)
	}
	if tm.AcceptedCurrent("2027-06-01") {
		t.Fatal("an older acceptance counts for a newer version")
	}
	w, err := c2.WithdrawTerms()
	if err != nil || w.Withdrawn.IsZero() || w.Version != "2026-12-07" || !w.Accepted.Equal(acc.Accepted) || w.AcceptedCurrent("2026-12-07") {
		t.Fatalf("withdrawn: %+v, %v", w, err)
	}
	if tm, _ := c2.Terms(); tm != w {
		t.Fatalf("after withdrawing: %+v, want %+v", tm, w)
	}
	again, err := c2.AcceptTerms("2027-06-01")
	if err != nil || !again.AcceptedCurrent("2027-06-01") || !again.Withdrawn.IsZero() {
		t.Fatalf("accepted again: %+v, %v", again, err)
	}
}
