package protocol

// Version is the protocol version carried in the envelope, in the WebSocket
// subprotocol and in every cryptographic label.
//
// Changelog:
//   - 1: first version (frames 0x01–0x0d and 0x80–0x8a, sealed and
//     session envelopes, blobs over HTTP).
const Version = 1

// Subprotocol is the WebSocket subprotocol a client must offer; the relay
// refuses connections that do not.
const Subprotocol = "postern.v1"

// WebSocketPath is the HTTP path of the relay's WebSocket endpoint.
const WebSocketPath = "/v1/ws"

// LabelPrefix starts every domain-separation label of version 1.
const LabelPrefix = "postern.v1 "
