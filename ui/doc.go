// Package ui is the local web app of Postern: an http.Handler that serves
// a JSON API over one client.Client (under /api/) and the page that uses
// it (plain HTML, CSS and JavaScript modules embedded in the binary, no
// build step). `postern ui` runs it on a loopback address; docs/API.md
// lists every endpoint.
//
// The package owns the web app's security model, its lock and its API. It
// uses only the public API of package client: what the page can do is what
// the library offers.
//
// # Security
//
// The server is reachable by every program on the machine and by every
// page the browser shows, so it trusts none of them:
//
//   - Sign-in: New makes a one-time URL (LoginURL) whose token (32 bytes
//     from crypto/rand) is exchanged once for a session cookie (HttpOnly,
//     SameSite=Strict, Path=/); the token is then void.
//   - DNS rebinding: every request's Host must be the listen address or
//     localhost with its port; any other is refused.
//   - Cross-site requests: a request that carries an Origin other than
//     the app's own is refused, and a state-changing request on the
//     cookie path must carry the app's Origin. A Sec-Fetch-Site other than
//     same-origin or none is refused on the cookie path.
//   - Integrations: a bearer token kept in a file of the home that only
//     its owner may read (BearerTokenFileName, checked at New) authorises
//     API calls with "Authorization: Bearer"; such a request never uses
//     the cookie, and a cookie never stands in for it.
//   - Every response carries a strict Content-Security-Policy (nothing
//     inline, nothing from elsewhere), Cache-Control: no-store,
//     X-Content-Type-Options: nosniff and Referrer-Policy: no-referrer.
//   - The lock: the passphrase is asked on the page (POST /api/unlock).
//     Locking (POST /api/lock, or no request for Options.IdleTimeout)
//     closes the client, which drops its keys from this process; while
//     locked, every endpoint with content answers 423 and nothing else.
//   - Attachments: a file uploaded from the page waits for its message in
//     a staging file sealed with AES-256-GCM under a key of that upload,
//     held in memory only; locking deletes the files with their keys. A
//     received file is decrypted as it streams to the browser, never
//     written to disk here.
//   - Link codes (the devices' page) are capabilities: kept in memory only
//     while the link waits, given only to authenticated callers, never
//     logged, dropped when the link ends or the app locks; the person
//     confirms the name of the device that answers before it is linked.
//
// Secrets never reach a log: not the tokens, the cookie, the passphrase
// or a link code.
package ui
