// Package relayconn is the one WebSocket frame client of a Postern relay:
// the client library, the load tool and the tests all talk to a relay
// through it, so that dialling, the handshake and the framing rules live
// in one place.
//
// It owns:
//
//   - dialling: the subprotocol protocol.Subprotocol (refused if the relay
//     does not select it), per-message compression off (ciphertext does
//     not compress, and compression would leak sizes), the read limit
//     protocol.MaxFrameSize, TLS through Options;
//   - the handshake: the relay's Challenge, read before Dial returns, and
//     the AuthMessage a device signs over it. A relay that refuses the
//     connection with an Error frame instead is reported as that
//     *protocol.Error; a refusal before the upgrade (a 429 with
//     Postern-Error and Retry-After) as a *DialError carrying the HTTP
//     response;
//   - framing: one frame per binary message, protocol.Marshal and
//     protocol.Parse; a text message or a frame that does not parse ends
//     the connection;
//   - request IDs, in its multiplexed mode (Start): each Request gets a
//     fresh non-zero ID and waits for the answer with that ID; frames the
//     relay pushes (request ID 0: Deliver, Drained) go to a push function
//     in order, and an Error frame with ID 0 is the relay refusing the
//     connection, which ends it;
//   - closing: Close with the normal status, CloseNow at once; Done and Err
//     tell that and why the connection ended.
//
// It does not own what the frames mean: enrolment, authentication and
// mailboxes are its callers' (the client library, the load tool, tests).
//
// # Two ways to use a Conn
//
// Multiplexed: call Start once, then Request from any goroutine. This is
// what the client library does.
//
// Direct: never call Start; WriteFrame and ReadFrame move single frames
// with request IDs the caller chooses, and WebSocket gives the underlying
// connection for tests that must send what a well-behaved client never
// would (garbage, text, oversized messages). This is for tests and the
// load tool's measurement loop, which pipeline on purpose. Direct calls
// and a started Conn do not mix.
//
// # Security
//
// The Conn never logs. The relay learns nothing from it that the frames
// do not carry; capabilities and signatures inside frames are the
// caller's to guard. TLS verification is the http.Client's: pass a
// TLSConfig only to narrow it (a private CA), never to disable it.
package relayconn
