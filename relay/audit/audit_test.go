package audit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// newLog writes n events (plus the created entry and heads every 4) into a
// fresh directory and closes the log (which signs a last head).
func newLog(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	clock := time.Unix(1764111600, 0)
	l, err := Open(dir, &Options{HeadEvery: 4, Now: func() time.Time { clock = clock.Add(time.Second); return clock }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := l.Append(EventInvitesCreated, Fields{"count": i + 1, "via": "admin"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func readLines(t *testing.T, dir string) [][]byte {
	b, err := os.ReadFile(filepath.Join(dir, LogFile))
	if err != nil {
		t.Fatal(err)
	}
	return splitLines(b)
}

func writeLines(t *testing.T, dir string, lines [][]byte) {
	if err := os.WriteFile(filepath.Join(dir, LogFile), append(bytes.Join(lines, []byte{'\n'}), '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyClean(t *testing.T) {
	dir := newLog(t, 10)
	rep, err := VerifyDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	// 1 created + 10 events + a head after every 4 entries + the closing head.
	if rep.Entries != 14 || rep.Heads != 3 || rep.Unsigned != 0 || rep.LastSeq != 14 {
		t.Errorf("report %+v", rep)
	}
	// Reopening continues the chain.
	l, err := Open(dir, &Options{HeadEvery: 4})
	if err != nil {
		t.Fatal(err)
	}
	l.Append(EventRelayStart, Fields{"enrollment": "invite"})
	rep, err = VerifyDir(dir, nil)
	if err != nil || rep.Unsigned != 1 {
		t.Fatalf("live log: %+v, %v", rep, err)
	}
	l.Close()
	if rep, err = VerifyDir(dir, nil); err != nil || rep.Unsigned != 0 || rep.LastSeq != 16 {
		t.Fatalf("reopened log: %+v, %v", rep, err)
	}
}

func TestVerifyTampered(t *testing.T) {
	other, err := LoadOrCreateKey(filepath.Join(t.TempDir(), KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		tamper  func(t *testing.T, dir string, lines [][]byte) [][]byte
		problem Problem
		seq     uint64
		line    int
		msg     string
	}{
		{"edited", func(t *testing.T, dir string, l [][]byte) [][]byte {
			l[6] = bytes.Replace(l[6], []byte(`"count":5`), []byte(`"count":6`), 1)
			return l
		}, Edited, 7, 7, "entry 7 (line 7) was edited"},
		{"reformatted", func(t *testing.T, dir string, l [][]byte) [][]byte {
			l[2] = bytes.Replace(l[2], []byte(`,"event"`), []byte(`, "event"`), 1)
			return l
		}, Edited, 3, 3, "entry 3 (line 3) was edited"},
		{"deleted", func(t *testing.T, dir string, l [][]byte) [][]byte {
			return append(l[:4:4], l[5:]...)
		}, Removed, 5, 5, "entry 5 was removed: line 5 holds entry 6"},
		{"deleted two", func(t *testing.T, dir string, l [][]byte) [][]byte {
			return append(l[:1:1], l[3:]...)
		}, Removed, 2, 2, "entries 2 to 3 were removed"},
		{"swapped", func(t *testing.T, dir string, l [][]byte) [][]byte {
			l[7], l[8] = l[8], l[7]
			return l
		}, Reordered, 9, 8, "entry 9 (line 8) is out of order: entry 8 is at line 9"},
		{"duplicated", func(t *testing.T, dir string, l [][]byte) [][]byte {
			return append(l[:3:3], append([][]byte{l[1]}, l[3:]...)...)
		}, Reordered, 2, 4, "entry 2 (line 4) is out of order: entry 4 is at line 5"},
		{"rechained without the key", func(t *testing.T, dir string, l [][]byte) [][]byte {
			// Drop entry 7 and renumber and rehash everything after it:
			// only the next head's signature can tell.
			return rechain(t, append(l[:6:6], l[7:]...), 6)
		}, BadSignature, 9, 9, "the head at entry 9 (line 9) has a bad signature: entries 6 to 9"},
		{"tail cut after a head", func(t *testing.T, dir string, l [][]byte) [][]byte {
			return l[:5] // entry 5 is a head; 6..14 gone
		}, Removed, 6, 6, "entries 6 to 14 were cut off the end: the log ends at entry 5 (line 5) but the signed head in audit.head is entry 14"},
		{"tail cut, saved head removed too", func(t *testing.T, dir string, l [][]byte) [][]byte {
			os.WriteFile(filepath.Join(dir, HeadFile), append(l[4], '\n'), 0o600) // an older genuine head
			return l[:5]
		}, 0, 0, 0, ""}, // undetectable from DATA alone: see doc.go (keep earlier exports)
		{"bad signature", func(t *testing.T, dir string, l [][]byte) [][]byte {
			// A head signed by another key, rehashed.
			e, _, _ := parseEntry(l[4])
			prev, _ := hex32(e.Prev)
			sig, _ := other.Sign(HeadContext, headMessage(e.Seq, prev, e.Time))
			e.Fields["sig"] = encodeSig(sig)
			l[4] = rehash(t, e)
			return rechain(t, l, 5)
		}, BadSignature, 5, 5, "the head at entry 5 (line 5) has a bad signature"},
		{"torn last line", func(t *testing.T, dir string, l [][]byte) [][]byte {
			l[len(l)-1] = l[len(l)-1][:40]
			return l
		}, Edited, 14, 14, "entry 14 (line 14) was edited: it does not parse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := newLog(t, 10)
			writeLines(t, dir, tt.tamper(t, dir, readLines(t, dir)))
			_, err := VerifyDir(dir, nil)
			if tt.problem == 0 {
				if err != nil {
					t.Fatalf("got %v", err)
				}
				return
			}
			var ae *Error
			if !errors.As(err, &ae) {
				t.Fatalf("got %v, want an *Error", err)
			}
			if ae.Problem != tt.problem || ae.Seq != tt.seq || ae.Line != tt.line || !strings.Contains(ae.Msg, tt.msg) {
				t.Errorf("got %v (%v, seq %d, line %d), want %v seq %d line %d %q", err, ae.Problem, ae.Seq, ae.Line, tt.problem, tt.seq, tt.line, tt.msg)
			}
			if !strings.HasPrefix(err.Error(), "audit log: ") {
				t.Errorf("message %q", err)
			}
		})
	}
}

func encodeSig(b []byte) string { return b64(b) }

// rehash recomputes e's hash and returns its line.
func rehash(t *testing.T, e entry) []byte {
	t.Helper()
	bb, _ := jsonMarshal(e.body)
	h := entryHash(bb)
	e.Hash = hexs(h[:])
	line, _ := jsonMarshal(e)
	return line
}

// rechain renumbers lines from index i on and recomputes prev and hash,
// as someone with write access but without the relay key could.
func rechain(t *testing.T, lines [][]byte, from int) [][]byte {
	t.Helper()
	prevEntry, _, _ := parseEntry(lines[from-1])
	prev := prevEntry.Hash
	for i := from; i < len(lines); i++ {
		e, _, err := parseEntry(lines[i])
		if err != nil {
			t.Fatal(err)
		}
		e.Seq, e.Prev = uint64(i+1), prev
		lines[i] = rehash(t, e)
		ne, _, _ := parseEntry(lines[i])
		prev = ne.Hash
	}
	return lines
}

func TestOpenRecoversTornLine(t *testing.T) {
	dir := newLog(t, 3)
	f, _ := os.OpenFile(filepath.Join(dir, LogFile), os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte(`{"seq":9,"ti`))
	f.Close()
	l, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	lines := readLines(t, dir)
	if !bytes.Contains(lines[len(lines)-2], []byte(`"event":"audit.recovered","fields":{"truncated_bytes":12}`)) {
		t.Errorf("no recovery entry: %s", lines[len(lines)-2])
	}
	if _, err := VerifyDir(dir, nil); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusesCorruptTail(t *testing.T) {
	dir := newLog(t, 3)
	lines := readLines(t, dir)
	lines[len(lines)-1] = bytes.Replace(lines[len(lines)-1], []byte(`"seq"`), []byte(`"Seq"`), 1)
	writeLines(t, dir, lines)
	if _, err := Open(dir, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v, want ErrCorrupt", err)
	}
}

func TestExportBundle(t *testing.T) {
	dir := newLog(t, 5)
	var buf bytes.Buffer
	if err := Export(dir, &buf); err != nil {
		t.Fatal(err)
	}
	pub, _ := ReadPublicKey(filepath.Join(dir, PublicKeyFile))
	rep, err := VerifyBundle(bytes.NewReader(buf.Bytes()), pub)
	if err != nil || rep.Entries != 8 {
		t.Fatalf("%+v %v", rep, err)
	}
	tampered := bytes.Replace(buf.Bytes(), []byte(`\"count\":3`), []byte(`\"count\":4`), 1)
	if _, err := VerifyBundle(bytes.NewReader(tampered), nil); err == nil || !strings.Contains(err.Error(), "entry 4 (line 4) was edited") {
		t.Fatalf("tampered bundle: %v", err)
	}
	// A bundle checked against another key fails at its first head.
	other, _ := LoadOrCreateKey(filepath.Join(t.TempDir(), KeyFile))
	var ae *Error
	if _, err := VerifyBundle(bytes.NewReader(buf.Bytes()), other.Public()); !errors.As(err, &ae) || ae.Problem != BadSignature {
		t.Fatalf("other key: %v", err)
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, KeyFile)
	k, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil || !k2.Public().Equal(k.Public()) {
		t.Fatalf("reload: %v", err)
	}
	pub, err := ReadPublicKey(path + ".pub")
	if err != nil || !pub.Equal(k.Public()) {
		t.Fatalf("public key file: %v", err)
	}
	sig, _ := k.Sign("x", []byte("m"))
	if err := k.Public().Verify("x", []byte("m"), sig); err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprintf("%v %x %#v", k, k, k); strings.Contains(s, "Key{") && !strings.Contains(s, "REDACTED") {
		t.Errorf("key printed: %s", s)
	}
	os.Chmod(path, 0o644)
	if _, err := LoadOrCreateKey(path); !errors.Is(err, ErrKeyFile) {
		t.Errorf("world-readable key: %v", err)
	}
	os.WriteFile(path, []byte("short"), 0o600)
	if _, err := LoadOrCreateKey(path); !errors.Is(err, ErrKeyFile) || strings.Contains(err.Error(), "short") {
		t.Errorf("malformed key: %v", err)
	}
}

func TestAppendRefusesOtherTypes(t *testing.T) {
	l, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Append("x", Fields{"blob": []byte("x")}); err == nil {
		t.Error("accepted []byte")
	}
	var nl *Log
	if err := nl.Append("x", nil); err != nil || nl.Close() != nil {
		t.Error("nil log")
	}
}
