package relay

import (
	"bytes"
	"errors"
	"net"
	"testing"
	"time"
)

// countConn records each Write call on a net.Conn.
type countConn struct {
	net.Conn
	writes   [][]byte
	fail     error
	deadline []time.Time
}

func (c *countConn) Write(p []byte) (int, error) {
	if c.fail != nil {
		return 0, c.fail
	}
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

func (c *countConn) SetWriteDeadline(t time.Time) error {
	c.deadline = append(c.deadline, t)
	return nil
}

func TestCorkGathersHeldWrites(t *testing.T) {
	under := &countConn{}
	c := &corkConn{Conn: under}

	c.Write([]byte("a")) // not held: straight through
	if len(under.writes) != 1 {
		t.Fatalf("unheld write: %d writes below, want 1", len(under.writes))
	}
	c.hold()
	for _, s := range []string{"b", "cc", "ddd"} {
		if n, err := c.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("held write %q: %d, %v", s, n, err)
		}
	}
	if len(under.writes) != 1 {
		t.Fatalf("held writes reached the connection before release: %d writes", len(under.writes))
	}
	if err := c.release(time.Second); err != nil {
		t.Fatal(err)
	}
	if len(under.writes) != 2 || string(under.writes[1]) != "bccddd" {
		t.Fatalf("release wrote %q, want one write of \"bccddd\"", under.writes[1:])
	}
	// The release ran under a deadline, cleared afterwards.
	if len(under.deadline) != 2 || under.deadline[0].IsZero() || !under.deadline[1].IsZero() {
		t.Fatalf("deadlines %v: want one set and then cleared", under.deadline)
	}
	if c.buf != nil {
		t.Fatal("the gathering buffer is kept after release: an idle connection would hold it")
	}
	c.Write([]byte("e"))
	if len(under.writes) != 3 {
		t.Fatal("a write after release was held")
	}
	// Nothing held: release writes nothing.
	c.hold()
	if err := c.release(time.Second); err != nil || len(under.writes) != 3 {
		t.Fatalf("empty release: %v, %d writes", err, len(under.writes))
	}
}

func TestCorkWritesPastLimit(t *testing.T) {
	under := &countConn{}
	c := &corkConn{Conn: under}
	c.hold()
	chunk := bytes.Repeat([]byte{7}, corkLimit/3+1)
	for range 3 {
		c.Write(chunk)
	}
	if len(under.writes) != 1 || len(under.writes[0]) != 2*len(chunk) {
		t.Fatalf("past the limit: %d writes below, want the first two chunks in one", len(under.writes))
	}
	c.release(time.Second)
	if len(under.writes) != 2 || len(under.writes[1]) != len(chunk) {
		t.Fatalf("release: %d writes", len(under.writes))
	}
}

func TestCorkFailureSticks(t *testing.T) {
	boom := errors.New("boom")
	under := &countConn{fail: boom}
	c := &corkConn{Conn: under}
	c.hold()
	c.Write([]byte("x"))
	if err := c.release(time.Second); !errors.Is(err, boom) || !errors.Is(err, errCorked) {
		t.Fatalf("release over a failing connection: %v", err)
	}
	under.fail = nil
	if _, err := c.Write([]byte("y")); !errors.Is(err, errCorked) {
		t.Fatalf("write after a failure: %v, want the failure again", err)
	}
	if len(under.writes) != 0 {
		t.Fatal("a write went out after the connection failed")
	}
}
