package stats

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
	"time"
)

var (
	team    = TeamID{0x7e, 'a', 'm'}
	alice   = [FingerprintSize]byte(sha256.Sum256([]byte("alice's identity")))
	agentFP = [FingerprintSize]byte(sha256.Sum256([]byte("the agent's identity")))
)

// entries is one of each kind of entry, with times a minute apart.
func entries() []Entry {
	at := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }
	return []Entry{
		{Time: at(0), Kind: LogStaffAdded, Actor: alice, Subject: Token(agentFP)},
		{Time: at(1), Kind: LogExport, Detail: ExportConversation, Actor: alice, Subject: tok(1)},
		{Time: at(2), Kind: LogBlock, Detail: BlockReplies, Actor: alice, Subject: tok(100)},
		{Time: at(3), Kind: LogEscalation, Detail: uint8(EscalationUnclaimed), Actor: agentFP, Subject: tok(2)},
		{Time: at(4), Kind: LogUnblock, Actor: alice, Subject: tok(100)},
		{Time: at(5), Kind: LogExport, Detail: ExportMessage, Actor: alice, Subject: tok(1)},
		{Time: at(6), Kind: LogStaffRemoved, Actor: alice, Subject: Token(agentFP)},
	}
}

// buildLog appends entries to a new log of team and returns its records.
func buildLog(t testing.TB, team TeamID, es []Entry) ([]Record, *Log) {
	t.Helper()
	l := NewLog(team)
	var rs []Record
	for _, e := range es {
		r, err := l.Append(e)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	return rs, l
}

func encodeLog(t testing.TB, rs []Record) []byte {
	t.Helper()
	var out []byte
	for _, r := range rs {
		b, err := r.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

func TestLogAppendVerify(t *testing.T) {
	rs, l := buildLog(t, team, entries())
	file := encodeLog(t, rs)
	if len(file) != len(rs)*RecordSize {
		t.Fatalf("log of %d bytes", len(file))
	}
	back, err := ParseLog(file)
	if err != nil {
		t.Fatal(err)
	}
	head, err := VerifyLog(team, back, nil)
	if err != nil {
		t.Fatal(err)
	}
	if head != l.Head() || head.Seq != uint64(len(rs)) {
		t.Fatalf("head %v, log's head %v", head, l.Head())
	}
	if h, err := VerifyLog(team, back, &head); err != nil || h != head {
		t.Fatalf("against its own head: %v, %v", h, err)
	}
	// An earlier head is still in the log.
	if _, err := VerifyLog(team, back, &Head{Seq: 3, Hash: rs[2].Hash}); err != nil {
		t.Fatal(err)
	}
	// A resumed log continues the chain.
	more, err := ResumeLog(head).Append(entries()[1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyLog(team, append(back, more), &head); err != nil || more.Seq != head.Seq+1 {
		t.Fatalf("resumed log: %v", err)
	}
	// The empty log.
	if h, err := VerifyLog(team, nil, nil); err != nil || h != NewLog(team).Head() || h.Seq != 0 {
		t.Fatalf("empty log: %v, %v", h, err)
	}
}

// Every changed byte of a log file is refused, by ParseLog or VerifyLog,
// even without a trusted head.
func TestLogEveryChangedByteFails(t *testing.T) {
	rs, _ := buildLog(t, team, entries())
	file := encodeLog(t, rs)
	for i := range file {
		for _, flip := range []byte{0x01, 0x80} {
			bad := bytes.Clone(file)
			bad[i] ^= flip
			back, err := ParseLog(bad)
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("byte %d: %v", i, err)
				}
				continue
			}
			if _, err := VerifyLog(team, back, nil); err == nil {
				t.Fatalf("byte %d ^ %#x: accepted", i, flip)
			}
		}
	}
}

func TestLogTampering(t *testing.T) {
	rs, l := buildLog(t, team, entries())
	head := l.Head()
	other, _ := buildLog(t, TeamID{9}, entries())
	// A well-chained entry 4 inserted after entry 3.
	extra, err := ResumeLog(Head{Seq: 3, Hash: rs[2].Hash}).Append(Entry{Time: t0, Kind: LogUnblock, Actor: alice, Subject: tok(7)})
	if err != nil {
		t.Fatal(err)
	}
	// Entries 4 on rewritten with their hashes recomputed.
	rewritten := append([]Record{}, rs[:3]...)
	lr := ResumeLog(Head{Seq: 3, Hash: rs[2].Hash})
	for _, e := range entries()[3:] {
		e.Subject[0] ^= 1
		r, err := lr.Append(e)
		if err != nil {
			t.Fatal(err)
		}
		rewritten = append(rewritten, r)
	}
	edited := append([]Record{}, rs...)
	edited[2].Entry.Detail = BlockAll
	// Entry 3 edited with its own hash recomputed: the link to 4 breaks.
	reHashed := append([]Record{}, edited...)
	reHashed[2].Hash = chainHash(reHashed[2].Prev, appendEntry(nil, 3, reHashed[2].Entry))
	cut := func(rs []Record, i int) []Record { return append(append([]Record{}, rs[:i]...), rs[i+1:]...) }
	swap := append([]Record{}, rs...)
	swap[3], swap[4] = swap[4], swap[3]

	cases := []struct {
		name      string
		records   []Record
		trusted   *Head
		want      error
		wantIndex int
	}{
		{"entry edited", edited, nil, ErrLogEdited, 2},
		{"entry edited, hash recomputed", reHashed, nil, ErrLogBroken, 3},
		{"first removed", cut(rs, 0), nil, ErrLogRemoved, 0},
		{"middle removed", cut(rs, 3), nil, ErrLogRemoved, 3},
		{"two swapped", swap, nil, ErrLogReordered, 3},
		{"entry repeated", append(append(append([]Record{}, rs[:5]...), rs[2]), rs[5:]...), nil, ErrLogReordered, 5},
		{"entry inserted", append(append(append([]Record{}, rs[:3]...), extra), rs[3:]...), nil, ErrLogInserted, 4},
		{"another team's log", other, nil, ErrLogBroken, 0},
		{"last removed", rs[:len(rs)-1], &head, ErrLogTruncated, len(rs) - 1},
		{"all removed", nil, &head, ErrLogTruncated, 0},
		{"end rewritten", rewritten, &head, ErrLogRewritten, len(rs) - 1},
		{"end rewritten, earlier head", rewritten, &Head{Seq: 5, Hash: rs[4].Hash}, ErrLogRewritten, 4},
		{"another team's log, empty head", other, &Head{Hash: StartHash(TeamID{9})}, ErrLogBroken, 0},
		{"empty, another team's head", nil, &Head{Hash: StartHash(TeamID{9})}, ErrLogRewritten, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := VerifyLog(team, c.records, c.trusted)
			var le *LogError
			if !errors.Is(err, c.want) || !errors.As(err, &le) || le.Index != c.wantIndex {
				t.Fatalf("got %v, want %v at record %d", err, c.want, c.wantIndex)
			}
		})
	}
	// What a chain alone cannot show: without a trusted head, a log cut
	// at its end or rewritten from some entry on is a valid log.
	for _, ok := range [][]Record{rs[:len(rs)-1], rewritten} {
		if _, err := VerifyLog(team, ok, nil); err != nil {
			t.Errorf("consistent log refused: %v", err)
		}
	}
}

func TestLogEntryRules(t *testing.T) {
	good := entries()[1]
	cases := map[string]func(*Entry){
		"kind 0":                  func(e *Entry) { e.Kind = 0 },
		"kind 7":                  func(e *Entry) { e.Kind = 7 },
		"export detail 0":         func(e *Entry) { e.Detail = 0 },
		"export detail 3":         func(e *Entry) { e.Detail = 3 },
		"block detail 4":          func(e *Entry) { e.Kind, e.Detail = LogBlock, 4 },
		"unblock detail 1":        func(e *Entry) { e.Kind, e.Detail = LogUnblock, 1 },
		"staff added detail 1":    func(e *Entry) { e.Kind, e.Detail = LogStaffAdded, 1 },
		"escalation detail 4":     func(e *Entry) { e.Kind, e.Detail = LogEscalation, 4 },
		"zero actor":              func(e *Entry) { e.Actor = [FingerprintSize]byte{} },
		"zero subject":            func(e *Entry) { e.Subject = Token{} },
		"zero time":               func(e *Entry) { e.Time = time.Time{} },
		"before 1970":             func(e *Entry) { e.Time = time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC) },
		"after the year 9999":     func(e *Entry) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"staff removed detail 2":  func(e *Entry) { e.Kind, e.Detail = LogStaffRemoved, 2 },
		"escalation no detail":    func(e *Entry) { e.Kind, e.Detail = LogEscalation, 0 },
		"block without its level": func(e *Entry) { e.Kind, e.Detail = LogBlock, 0 },
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			l := NewLog(team)
			e := good
			change(&e)
			if _, err := l.Append(e); !errors.Is(err, ErrEntry) {
				t.Fatalf("Append: %v", err)
			}
			if l.Head() != NewLog(team).Head() {
				t.Fatal("a refused entry moved the head")
			}
		})
	}
	full := ResumeLog(Head{Seq: MaxLogEntries})
	if _, err := full.Append(good); !errors.Is(err, ErrFull) || full.Head().Seq != MaxLogEntries {
		t.Fatalf("append to a full log: %v", err)
	}
}

func TestParseRecordRefuses(t *testing.T) {
	rs, _ := buildLog(t, team, entries()[:1])
	good, err := rs[0].MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	set := func(i int, v ...byte) []byte { b := bytes.Clone(good); copy(b[i:], v); return b }
	for name, b := range map[string][]byte{
		"empty":      nil,
		"short":      good[:RecordSize-1],
		"long":       append(bytes.Clone(good), 0),
		"version 0":  set(0, 0),
		"version 2":  set(0, 2),
		"seq 0":      set(1, 0, 0, 0, 0, 0, 0, 0, 0),
		"seq huge":   set(1, 0, 0, 0, 0, 1, 0, 0, 1),
		"time 0":     set(9, 0, 0, 0, 0, 0, 0, 0, 0),
		"time huge":  set(9, 0xff, 0, 0, 0, 0, 0, 0, 0),
		"kind 9":     set(17, 9),
		"detail 5":   set(18, 5),
		"zero actor": set(19, make([]byte, 32)...),
	} {
		if _, err := ParseRecord(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := ParseLog(append(bytes.Clone(good), good[:1]...)); !errors.Is(err, ErrMalformed) {
		t.Errorf("partial record: %v", err)
	}
	r := rs[0]
	r.Seq = 0
	if _, err := r.MarshalBinary(); !errors.Is(err, ErrEntry) {
		t.Errorf("record 0 marshalled: %v", err)
	}
}

func TestLogKindNames(t *testing.T) {
	if LogExport.String() != "export" || LogEscalation.String() != "escalation" || LogKind(9).String() != "LogKind(9)" {
		t.Error("kind names")
	}
}
