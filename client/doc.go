// Package client is the Postern client library: it keeps a person's keys
// and an encrypted local store in a home directory, talks to a relay, and
// sends and receives end-to-end encrypted messages.
//
// # Getting started
//
// Create a home once with [Init], then open it in every later process
// with [Dial] to talk to the relay, or with [Open] to work on what is
// stored on this device:
//
//	c, err := client.Init(ctx, home, passphrase, "wss://relay.example.org", "alice", nil)
//	// later, in another process:
//	c, err := client.Dial(ctx, home, passphrase, nil)
//	defer c.Close()
//
// # Local and network use
//
// [Open] touches no network: [Client.Whoami], [Client.Contacts],
// [Client.Inbox], [Client.Message] and [Client.Stats] read the local store,
// so they work while the relay is unreachable, and opening receives and
// acknowledges nothing (it does not race a listener on the same home).
// [Dial] is Open followed by connecting: it authenticates to the relay and
// subscribes to every mailbox, and from then on envelopes are received,
// stored and acknowledged in the background.
//
//	c, err := client.Open(home, passphrase, nil) // no relay needed
//	msgs, err := c.Inbox()
//
// A Client from Open connects on demand: the first [Client.Sync],
// [Client.Receive], [Client.Ack], [Client.Invite], [Client.Accept],
// [Client.Block] or [Client.Unblock] connects as Dial would, and returns the connection error
// if the relay cannot be reached (the next call tries again).
// [Client.Send] uses only its own unauthenticated connection and does not
// start receiving.
//
// Two people become contacts with an invitation: one calls [Client.Invite]
// and hands the returned line to the other (in person, by a channel they
// trust), who calls [Client.Accept] with it and a name for the inviter.
// The inviter sees the new contact, under the accepter's own name, after
// their next [Client.Sync] or [Client.Receive]. Invitations are single-use:
// once the inviter has added the contact, it gives them a fresh mailbox and
// capability inside their session and revokes the invitation's, so a
// leaked or second use of the line fails with [ErrInvitationSpent].
//
//	code, _ := alice.Invite(ctx)          // "postern-invite:2:..."
//	_, _ = bob.Accept(ctx, code, "alice")
//	_, _ = alice.Sync(ctx)                 // alice now has contact "bob"
//
// Then [Client.Send] a text, and [Client.Sync] (everything queued, then
// return) or [Client.Receive] (block for the next message) on the other
// side. [Client.Inbox] lists every stored message, incoming and outgoing.
// Both sides show the same 16-hex-digit message ID.
//
// Every received envelope is committed to the local store before it is
// acknowledged (deleted) on the relay, and duplicates (the relay delivers
// at least once) are stored once. Several processes may use one home at
// the same time — for example a long-running listener and short commands:
// the store file is opened for each transaction and closed after it. A
// receiving Client also subscribes to mailboxes that another process on
// the same home creates (an invitation made or accepted there), so it
// receives from contacts added after it started. Once connected, the
// Client reconnects by itself when the relay goes away. An envelope that
// cannot be stored (a full disk) is not acknowledged, and Sync or Receive
// return an error matching [ErrStore]: a storage failure never reads as
// "nothing new".
//
// # Events
//
// A front-end that shows conversations as they change uses
// [Client.Subscribe]: a stream of [Event] values — a message or notice
// stored ([EventMessage], also for messages this Client sent), a contact
// added, blocked, unblocked, refused or re-routed ([EventContact]), a
// session replaced ([EventSessionReset]), an envelope that could not be
// stored ([EventStoreError]), the connection's state ([EventConnection]:
// online, reconnecting, offline), an alert about this person's own devices
// ([EventAlert]: one linked or revoked), a contact's device list that does
// not verify ([EventTransparency]), a queued message that left the
// outbox ([EventSent]), and a sent message the recipient reported
// delivered or read ([EventReceipt]). Events come after
// the change is committed, messages in the order they were stored. Each
// subscriber has its own queue of [EventQueueSize] events; one that does
// not read never slows receiving, storing or other subscribers: it loses
// events and is told so with [EventMissed], and then reads the store again
// ([Client.Inbox], [Client.Contacts]). The stream ends when its context
// ends or the Client is closed.
//
//	evs, _ := c.Subscribe(ctx)
//	msgs, _ := c.Inbox() // then apply events, deduplicating messages by ID
//	for ev := range evs {
//		switch ev.Kind {
//		case client.EventMessage: // show ev.Message
//		case client.EventMissed: // msgs, _ = c.Inbox() and redraw
//		}
//	}
//
// [Client.Receive] and [Client.Sync] read the Client's own subscriber,
// which loses nothing (what it does not keep in memory it reads back from
// the store): they return each new incoming message once, whoever else
// subscribes.
//
// # Several devices
//
// A person has up to 8 devices. [Client.LinkDevice] shows a one-time link
// code and answers the new device, which calls [LinkWith] with it; a
// backup ([Client.Backup]) restores as a new device ([Restore]). Each pair
// of devices has its own session and routes: a message goes to every
// device of the recipient's person that its verified device list names,
// and is copied to the sender's other devices, so it shows on all of
// them. [Client.Devices] lists this person's devices and
// [Client.RevokeDevice] revokes one from another.
//
// # The inbox
//
// Every message is in a folder: Inbox (received), Sent, Archive, or a
// folder of the person's own ([Client.CreateFolder], [Client.MoveMessage];
// [Client.Folders] lists them with unread counts). A received message is
// unread until [Client.MarkRead]. [Client.Messages] reads one page of a
// folder, newest first, without loading every message:
//
//	page, _ := c.Messages(&client.ListOptions{Folder: client.FolderInbox, Limit: 50})
//	next, _ := c.Messages(&client.ListOptions{Folder: client.FolderInbox, Limit: 50, Before: page[len(page)-1].ID})
//
// [Client.Thread] returns the conversation thread of a message (replies
// and subjects). Drafts are saved as they are written ([Client.SaveDraft])
// and sent with [Client.SendDraft]. Folders, moves, read state and drafts
// reach the person's other devices in encrypted sync messages, and devices
// that make changes at once agree on the later one.
//
// # Receipts
//
// A device that stores a message tells the sending device that it was
// delivered, and that it was read when [Client.MarkRead] (or [Client.SendReadReceipts]
// for a front-end with read state of its own) says so, unless the person turned read
// receipts off ([Client.SetReadReceipts]). Receipts are end-to-end
// encrypted session messages that the relay cannot tell from any other;
// the sender's outgoing message shows them as [Message.Delivered] and
// [Message.ReadReceipt] (protocol/SPEC.md section 9 "Receipts").
//
// # Groups
//
// [Client.CreateGroup] makes a group of contacts with this person as its
// admin; the members' devices join by themselves at their next [Client.Sync]
// or while listening. [Client.SendGroup] seals a message once and uploads
// it once, and the relay stores a copy for every member device. Admins
// change the membership ([Client.AddGroupMember], [Client.RemoveGroupMember],
// [Client.SetGroupRole]); a removal changes the group's keys, so the removed
// member reads nothing sent afterwards. Observers read and cannot send
// ([ErrObserver]); a delegate's messages show as "DELEGATE for MEMBER".
// Group messages are stored in the group's conversation ([Group].Conversation,
// [Message].Conversation), To the group's name. In this version every member
// device must be on the group's relay, and members reach one another's
// devices only where they are contacts (protocol/SPEC.md section 15.5).
//
// # Errors
//
// Errors are sentinels in errors.go, tested with errors.Is; relay refusals
// are *protocol.Error values (test with protocol.IsCode). A contact who
// blocked you makes Send fail with an error matching [ErrBlocked] that
// reads "NAME no longer accepts messages from you"; a contact you blocked
// ([Client.Block], until [Client.Unblock]) is not sent to
// ([ErrContactBlocked]). Invitation parse
// failures all match [ErrInvalidInvitation], and the specific ones
// [ErrInvitationChecksum], [ErrInvitationTruncated] and so on.
//
// # Teams
//
// [Client.CreateTeam] makes this profile a team: its person is the team,
// this device its intake, its staff a group it administers
// ([Client.AddStaff], [Client.RemoveStaff]). Outsiders accept its invitation
// ([Client.TeamInvite]) and write to it as to a person; the intake forwards
// each message into the staff group, and staff devices list the queue
// ([Client.Queue], [Client.QueueThread]), answer ([Client.ReplyQueue], sent
// to the outsider from the team), and [Client.Claim], [Client.Assign] and
// [Client.Resolve] conversations through compare-and-set registers on the
// relay that learn nothing of the conversation ([ErrOwned], [ErrNotOwner],
// [ErrQueueState]). [Client.ReadQueue] reads a conversation: the staff
// learn who read which of the outsider's messages ([Message.ReadBy]), the
// outsider that the team did. [Client.BlockOutsider] restricts an outsider
// (protocol/SPEC.md section 15.9).
//
// # Security
//
//   - Keys: the identity and device private keys and the store key live in
//     keys.pstn, sealed under the passphrase with Argon2id and
//     XChaCha20-Poly1305. Every store value is encrypted under the store key,
//     and store keys are keyed hashes, so store.db reveals no names, texts or
//     IDs — only how many records there are and their sizes.
//   - Deleted short-lived secrets are erased, not only unlinked: prekey
//     secrets and session states are sealed under keys kept in a keyring
//     whose key lives in erase.keys and is overwritten in place whenever
//     one of them is deleted or replaced, so a used one-time prekey or an
//     old ratchet state does not decrypt from a free page of store.db, nor
//     from an old copy of it. The limits (flash, journaling file systems,
//     swap) are in protocol/SPEC.md section 9 "Erasure".
//   - Texts travel in a session per contact (a PQXDH-shaped handshake over
//     X-Wing prekeys, then a Double Ratchet with a periodic ML-KEM-768
//     step: forward secrecy and healing), padded to a fixed size bucket.
//     Introductions are sealed with HPKE (X-Wing: X25519 + ML-KEM-768) to
//     the recipient device and signed inside by the sender's hybrid
//     (Ed25519 + ML-DSA-65) device key. The relay sees mailbox IDs, sizes
//     and coarse times, never content or the sender.
//   - Sealed sender: sends use never-authenticated connections, one per
//     contact, with a per-contact capability. The relay can still
//     correlate by IP address and timing; use a network that hides them if
//     that matters.
//   - Trust: Accept checks that the relay's keys match the identity
//     fingerprint in the invitation, so the invitation channel is what you
//     trust. The relay sees only a capability derived from the invitation's
//     secret, never the key that authenticates the introduction, so it
//     cannot introduce a device of its own. Compare Contact.SafetyNumber out
//     of band to be sure.
//   - A session that is lost (wiped or restored state) is replaced by a
//     new one, never silently: both people get a notice in the
//     conversation (Message.Notice) asking them to compare safety numbers.
//     Messages sealed on the lost session are not recovered.
//   - Sealed introductions have no forward secrecy: a stolen device key
//     opens those still held by the relay or recorded in transit.
//   - Envelopes that do not decrypt, parse or verify, or that come from
//     unknown or blocked senders, are dropped, acknowledged and counted
//     ([Stats]); logs never carry content, keys or whole IDs.
//   - Go cannot promise that secrets are wiped from memory; the decrypted
//     store key stays in memory while the Client is open.
//
// protocol/SPEC.md section 9 is the normative description of invitations,
// bundles, sealed envelopes and the client's use of sessions.
package client
