package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/postern/postern/client"
	"github.com/postern/postern/protocol"
)

// TestRelayStorageFullSentence: a relay refusal with code 62 matches
// client.ErrRelayStorageFull and is worded as a full relay disk, not as
// an internal relay error.
func TestRelayStorageFullSentence(t *testing.T) {
	err := fmt.Errorf("client: send to bob: %w", &protocol.Error{Code: protocol.CodeStorageFull, Msg: "the relay's disk is full; nothing was stored; try again later"})
	if !errors.Is(err, client.ErrRelayStorageFull) {
		t.Error("code 62 does not match client.ErrRelayStorageFull")
	}
	if errors.Is(&protocol.Error{Code: protocol.CodeInternal}, client.ErrRelayStorageFull) {
		t.Error("an internal error matches client.ErrRelayStorageFull")
	}
	msg, hint := (&cli{}).explain(err)
	if !strings.Contains(msg, "disk is full") || strings.Contains(msg, "internal") || hint == "" {
		t.Errorf("explain = %q, hint %q", msg, hint)
	}
}
