// Package relay is Postern's relay: a thin, untrusted server that moves and
// briefly keeps opaque, padded envelopes between mailboxes.
//
// # Using it
//
//	st, err := bboltstore.Open(filepath.Join(dir, relay.DBFile), nil) // any store.Store
//	if err != nil { ... }
//	r, err := relay.New(relay.Config{DataDir: dir, Store: st, Logger: logger})
//	if err != nil { ... }
//	srv := &http.Server{Addr: "127.0.0.1:7878", Handler: r,
//		ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 16 << 10} // no Read/WriteTimeout: blobs are long
//	go srv.ListenAndServe()
//	...
//	r.Shutdown(ctx) // stop accepting, finish commits, close connections, close the store
//
// [Relay.ServeHTTP] serves the WebSocket endpoint at protocol.WebSocketPath,
// blob upload and download at protocol.BlobPath and a liveness probe at
// /healthz. For tests, relay/relaytest starts a
// relay on loopback, like net/http/httptest.
//
// [Relay.Reload] changes a running relay's enrolment policy, retention,
// connection, blob, per-address and frame-rate limits and keep-alive
// without a restart; open connections keep working:
//
//	c := r.Config()
//	c.Enrollment = relay.EnrollInvite
//	if err := r.Reload(c); err != nil { ... } // ErrConfig: nothing changed
//	r.AuditReload([]string{"enrollment"}, nil)
//
// # What the relay does
//
// Each connection gets a Challenge. A device enrolls (Enroll) or
// authenticates (Auth) by signing protocol.AuthMessage(nonce, host); it can
// then create mailboxes, register and revoke send-capability hashes,
// publish prekeys, subscribe to its mailboxes and acknowledge envelopes.
// Sending (Send) and fetching a prekey bundle (FetchBundle) need only a send
// capability, so senders may use anonymous connections (sealed sender).
// An authenticated device reserves a blob (CreateBlob) and uploads its
// ciphertext over HTTP in resumable whole chunks; anyone with the blob ID
// downloads it once finished. Blobs live in DataDir/blobs, one file per
// blob named by a hash of its ID, indexed in the store
// (protocol/SPEC.md section 12.5).
// A team queue keeps claim spaces: an authenticated device creates one
// (CreateClaimSpace); anyone with its write capability sets compare-and-set
// registers (SetClaim, GetClaim), and its admin capability replaces the
// write capability or deletes it (UpdateClaimSpace; claims.go). A
// capability revoked with a reason refuses sends with the reason's code.
//
// A group's fan-out list (CreateFanout, by an authenticated device) names
// the mailboxes of its devices; a sender with the list's send capability
// uploads an envelope once (SendFanout) and the relay stores a copy in
// each, in one commit (fanout.go).
// Every request gets exactly one answer with its request ID. A Send is
// answered only after the envelope is durable.
//
// # Security
//
// The relay never sees plaintext, capability tokens at rest (only their
// hashes), invite codes at rest (only their hashes), blob IDs or upload
// tokens at rest (only hashes) or sender identities.
// It logs no addresses at info level and never logs content, keys, tokens
// or whole IDs. protocol/SPEC.md section 10 lists what it stores and sees.
package relay
