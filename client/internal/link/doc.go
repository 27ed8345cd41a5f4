// Package link is the device-link exchange: the one-time link code an
// existing device shows (as a line of text and a QR code in the terminal),
// and the two sealed messages with which a new device of the same person
// asks to be enrolled and receives the person's identity. It is pure: no
// network, no storage, no logging; the client carries the messages through
// a link mailbox on the relay. protocol/SPEC.md section 13 is normative for
// every byte, label and limit.
//
// # Flow
//
// On the existing device:
//
//	code, err := link.NewCode(relay, linkMailbox, time.Now()) // register code.Capability() for linkMailbox
//	link.WriteQR(os.Stdout, code.Text(), link.QROptions{})    // and print code.Text()
//	req, err := code.OpenRequest(sealedRequest)              // from the link mailbox
//	// show req.Name, certify req.Signing and req.KEM with the identity, then:
//	sealedResponse, err := code.SealResponse(req, &link.Response{...}) // send to req.ReplyMailbox
//
// On the new device:
//
//	code, err := link.Parse(text, time.Now())
//	pending, sealedRequest, err := code.SealRequest(&link.Request{...}) // send with code.Capability()
//	resp, err := pending.OpenResponse(sealedResponse)
//
// # Security
//
//   - The code is the only secret, as an invitation is: every key (the link
//     mailbox's capability, the request key and the response key) is
//     derived from its 32-byte secret with HKDF-SHA-256, bound to the relay
//     URL and the mailbox. The relay learns the capability only, which
//     opens neither message.
//   - The request authenticates under the request key, so the existing
//     device knows it came from a holder of the code. The response is bound
//     to the hash of that exact request (the transcript): a second request
//     made with the same code gets no usable response meant for the first.
//   - The response's body is also sealed (HPKE, X-Wing) to a one-time reply
//     key that the new device makes for its request and keeps in memory
//     only (in the Pending). Whoever obtains the code after the exchange,
//     together with the stored response envelope, learns nothing from them.
//   - Whoever holds the code while it lives can enrol a device and receive
//     the identity secret. Codes expire after MaxLifetime (10 minutes); the
//     existing device must accept one request per code, show the device
//     name, and drop the link mailbox afterwards. Show the code only to the
//     person at the new device.
//   - Every message failure is ErrDecrypt (authentication) or
//     ErrInvalidMessage (content of an authenticated message). Parse
//     distinguishes a typing error (ErrChecksum) from other damage
//     (ErrMalformed), another version (ErrUnsupportedVersion) and an
//     expired code (ErrExpired); no error carries key material.
//   - Go cannot promise that secrets are wiped from memory; this package
//     does not try.
package link
