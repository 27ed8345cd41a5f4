// Package protocol is Postern's wire format, version 1: the frames a client
// and a relay exchange over a WebSocket, the outer envelope the relay stores,
// the padding buckets, every limit and every numbered error code.
//
// SPEC.md beside this file is normative; this package is its executable
// form. It imports only the standard library so that both the relay and the
// client can depend on it without pulling in anything else.
//
// # Using it
//
// Every WebSocket message is one frame. Encode with [Marshal] and decode
// with [Parse]:
//
//	b := protocol.Marshal(7, &protocol.Send{Mailbox: mb, Capability: tok, Envelope: env})
//	id, f, err := protocol.Parse(b)
//
// [Parse] checks exact lengths, rejects trailing bytes and enforces every
// size limit before allocating, so it is safe on hostile input; it returns
// an error wrapping [ErrMalformed] with a specific message.
//
// # Security
//
// The relay sees only what these frames carry: mailbox IDs, capability
// tokens (stored only as [CapabilityToken.Hash]), device public keys, opaque
// prekey bundles and padded envelopes. Envelope bodies are ciphertext defined
// by the client; the relay checks only their version and padded size.
// [CapabilityToken] is a bearer secret: its String method redacts it.
package protocol
