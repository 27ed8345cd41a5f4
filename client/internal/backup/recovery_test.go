package backup

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func testKey(b byte) RecoveryKey {
	var k RecoveryKey
	for i := range k.b {
		k.b[i] = b + byte(i)*7
	}
	return k
}

func TestRecoveryKeyRoundTrip(t *testing.T) {
	for _, k := range []RecoveryKey{NewRecoveryKey(), testKey(0), testKey(0xff), {}} {
		text := k.SecretText()
		lines := strings.Split(text, "\n")
		if len(lines) != 4 {
			t.Fatalf("%d lines, want 4", len(lines))
		}
		for _, l := range lines {
			if len(l) != 4*GroupDigits+3 {
				t.Fatalf("line %q", l)
			}
		}
		for _, form := range []string{text, strings.ReplaceAll(text, "\n", " "), strings.NewReplacer("\n", "-", " ", "-").Replace(text),
			strings.NewReplacer("\n", "", " ", "").Replace(text), "  " + text + "\r\n"} {
			got, err := ParseRecoveryKey(form)
			if err != nil || !got.Equal(k) {
				t.Fatalf("ParseRecoveryKey(%q) = %v", form, err)
			}
		}
	}
	k := NewRecoveryKey()
	for _, s := range []string{k.String(), fmt.Sprintf("%v %+v %#v %x %s %d", k, k, k, k, k, k)} {
		if !strings.Contains(s, "REDACTED") || strings.Contains(s, k.SecretText()[:6]) {
			t.Fatalf("formatting leaks: %q", s)
		}
	}
	if NewRecoveryKey().Equal(k) {
		t.Fatal("two fresh keys are equal")
	}
}

// TestRecoveryKeyTypos: every single wrong digit and every swap of two
// neighbouring digits, in every group, is caught and located.
func TestRecoveryKeyTypos(t *testing.T) {
	k := testKey(3)
	groups := strings.Fields(k.SecretText())
	join := func(g []string) string { return strings.Join(g, " ") }
	for gi := range groups {
		for pos := range GroupDigits {
			for d := byte('0'); d <= '9'; d++ {
				g := []byte(groups[gi])
				if g[pos] == d {
					continue
				}
				g[pos] = d
				mod := append([]string(nil), groups...)
				mod[gi] = string(g)
				checkGroupErr(t, join(mod), gi+1)
			}
			if pos+1 < GroupDigits && groups[gi][pos] != groups[gi][pos+1] {
				g := []byte(groups[gi])
				g[pos], g[pos+1] = g[pos+1], g[pos]
				mod := append([]string(nil), groups...)
				mod[gi] = string(g)
				checkGroupErr(t, join(mod), gi+1)
			}
		}
	}
	// Two groups typed in each other's place: the group number is in the
	// check, so this is caught (for this key; in general 9 times in 10).
	mod := append([]string(nil), groups...)
	mod[4], mod[5] = mod[5], mod[4]
	if _, err := ParseRecoveryKey(join(mod)); !errors.Is(err, ErrRecoveryKey) {
		t.Errorf("swapped groups 5 and 6 accepted")
	}
}

func checkGroupErr(t *testing.T, s string, group int) {
	t.Helper()
	_, err := ParseRecoveryKey(s)
	var ke *RecoveryKeyError
	if !errors.As(err, &ke) || !errors.Is(err, ErrRecoveryKey) || ke.Group != group {
		t.Fatalf("ParseRecoveryKey(%q) = %v, want an error naming group %d", s, err, group)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("group %d of 16", group)) {
		t.Fatalf("error %q does not name group %d", err, group)
	}
}

func TestRecoveryKeyErrors(t *testing.T) {
	groups := strings.Fields(testKey(9).SecretText())
	with := func(i int, g string) string {
		m := append([]string(nil), groups...)
		m[i] = g
		return strings.Join(m, " ")
	}
	cases := []struct {
		name  string
		in    string
		group int
		text  string
	}{
		{"empty", "", 0, "0 groups"},
		{"15 groups", strings.Join(groups[:15], " "), 0, "15 groups"},
		{"17 groups", strings.Join(append(groups, groups[0]), " "), 0, "17 groups"},
		{"95 digits", strings.Join(groups, "")[:95], 0, "1 groups"},
		{"short group", with(6, groups[6][:5]), 7, "5 digits"},
		{"long group", with(6, groups[6]+"1"), 7, "7 digits"},
		{"letter", with(11, "12a456"), 12, "not a digit"},
		{"letter O for zero", with(0, "O"+groups[0][1:]), 1, "not a digit"},
		{"value above 65535", with(2, "99999"+string(rune('0'+damm("0399999")))), 3, "out of range"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRecoveryKey(tc.in)
			var ke *RecoveryKeyError
			if !errors.As(err, &ke) || ke.Group != tc.group || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("ParseRecoveryKey = %v; want group %d, %q", err, tc.group, tc.text)
			}
			for _, g := range groups {
				if strings.Contains(err.Error(), g) {
					t.Fatalf("error %q echoes a group of the key", err)
				}
			}
		})
	}
}

// TestDamm checks the table against the published example (572 → 4).
func TestDamm(t *testing.T) {
	if damm("572") != 4 || damm("5724") != 0 {
		t.Fatalf("damm(572) = %d, damm(5724) = %d", damm("572"), damm("5724"))
	}
}
