package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/client/internal/team/hours"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// The outsider's side of a team (protocol/SPEC.md section 15.9 "The
// outsider's side"). A team's intake tells each outsider, pairwise, that
// the contact is a team (contentTeamNotice): its name and, when its agent
// states them, its response windows as plain figures. The outsider's
// client keeps the newest notice on the contact's person record, and every
// compose to the contact shows TeamNoticeText with the windows. The
// intake sends a notice once per outsider per notice version: after the
// outsider's first message, and again when the agent starts with other
// windows.

// contentTeamNotice is the team notice: pairwise, from a team's intake to
// an outsider.
const contentTeamNotice byte = 0x23

// TeamNoticeText is the fixed notice every compose to a team shows. It is
// the client's, never the team's: a team cannot change or remove it.
const TeamNoticeText = "Postern is not for emergencies: a message may not be read at once. In an emergency, call your local emergency number."

// Limits of a team notice (SPEC 15.9 "The outsider's side").
const (
	teamNoticeVersion = 1
	// MaxTeamZoneSize bounds the time zone name a notice carries.
	MaxTeamZoneSize = 64
	// maxTeamNoticeSize is the longest body: every field at its limit.
	maxTeamNoticeSize = 1 + 32 + 4 + 1 + MaxNameSize + 1 + 1 + 4 + 1 + 2 + 2 + 1 + MaxTeamZoneSize + 4
)

const (
	windowBusinessDays    = 1
	windowBusinessMinutes = 2
)

// TeamNotice is what a contact that is a team said of itself: its name
// and, if its agent states them, its response windows. The name and the
// figures are the team's own word, shown as such; TeamNoticeText is
// Postern's.
type TeamNotice struct {
	Name    string // the team's name as it gives it (the contact's name is the user's)
	Version uint32 // of the notice: a team sends a new one when its windows change
	// Windows, nil when the team stated none (its agent never ran).
	Windows *TeamWindows
	// Received is when this device took the notice.
	Received time.Time
}

// TeamWindows are a team's response windows as plain figures.
type TeamWindows struct {
	// BusinessDays: a message is answered within this many business
	// days; or, when it is 0, within BusinessTime of business time.
	BusinessDays int
	BusinessTime time.Duration
	// Days are the business days, Open and Close the hours ("08:00",
	// "17:00"; "24:00" for midnight at the end of the day) in Zone (an
	// IANA name as the team gives it).
	Days        []time.Weekday
	Open, Close string
	Zone        string
	// Urgent is the window of a message marked urgent, at all hours.
	Urgent time.Duration
}

// Sentence is the response windows as one sentence about the contact
// named name: "Pharmacy answers within 3 business days (Mon–Fri
// 08:00–17:00 Europe/London); urgent messages within 2 hours." It is ""
// when the team stated no windows.
func (n *TeamNotice) Sentence(name string) string {
	if n == nil || n.Windows == nil {
		return ""
	}
	w := n.Windows
	normal := hours.BusinessTime(w.BusinessTime)
	if w.BusinessDays > 0 {
		normal = hours.BusinessDays(w.BusinessDays)
	}
	return fmt.Sprintf("%s answers within %s (%s %s–%s %s); urgent messages within %s.",
		name, normal, dayRange(w.Days), w.Open, w.Close, w.Zone, hours.WallClock(w.Urgent))
}

var weekdayShort = [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

// dayRange writes business days as runs: "Mon–Fri", "Mon–Wed, Fri".
func dayRange(days []time.Weekday) string {
	var set [7]bool
	for _, d := range days {
		set[d] = true
	}
	var parts []string
	for d := 0; d < 7; {
		if !set[d] {
			d++
			continue
		}
		e := d
		for e+1 < 7 && set[e+1] {
			e++
		}
		switch {
		case e == d:
			parts = append(parts, weekdayShort[d])
		case e == d+1:
			parts = append(parts, weekdayShort[d], weekdayShort[e])
		default:
			parts = append(parts, weekdayShort[d]+"–"+weekdayShort[e])
		}
		d = e + 1
	}
	return strings.Join(parts, ", ")
}

// teamNoticeWire is the body of a contentTeamNotice.
type teamNoticeWire struct {
	Team    keys.Fingerprint // the team person's identity: the sender's
	Version uint32           // ≥ 1
	Name    string
	Windows *store.TeamWindows
}

// appendTeamNotice encodes a team notice's body (SPEC 15.9 "The
// outsider's side"):
//
//	0x01 || team identity [32] || version u32 || u8 len || name || flags u8
//	[|| kind u8 || value u32 || days u8 || open u16 || close u16 || u8 len || zone || urgent u32]
func appendTeamNotice(b []byte, n *teamNoticeWire) ([]byte, error) {
	if n == nil || n.Version == 0 || checkName(n.Name) != nil || (n.Windows != nil && !validWindows(n.Windows)) {
		return nil, ErrDecrypt
	}
	b = append(b, teamNoticeVersion)
	b = append(b, n.Team[:]...)
	b = binary.BigEndian.AppendUint32(b, n.Version)
	b = append(b, byte(len(n.Name)))
	b = append(b, n.Name...)
	if n.Windows == nil {
		return append(b, 0), nil
	}
	w := n.Windows
	b = append(b, 1)
	if w.BusinessDays > 0 {
		b = append(b, windowBusinessDays)
		b = binary.BigEndian.AppendUint32(b, uint32(w.BusinessDays))
	} else {
		b = append(b, windowBusinessMinutes)
		b = binary.BigEndian.AppendUint32(b, uint32(w.BusinessMinutes))
	}
	b = append(b, w.Days)
	b = binary.BigEndian.AppendUint16(b, uint16(w.Open))
	b = binary.BigEndian.AppendUint16(b, uint16(w.Close))
	b = append(b, byte(len(w.Zone)))
	b = append(b, w.Zone...)
	return binary.BigEndian.AppendUint32(b, uint32(w.UrgentMinutes)), nil
}

// parseTeamNotice reads what appendTeamNotice writes; false for anything
// else.
func parseTeamNotice(r *protocol.Reader) (*teamNoticeWire, bool) {
	if r.U8("team notice version") != teamNoticeVersion {
		return nil, false
	}
	n := &teamNoticeWire{}
	r.Array(n.Team[:], "team identity")
	n.Version = r.U32("notice version")
	n.Name = string(r.Take(int(r.U8("team name length")), "team name"))
	flags := r.U8("notice flags")
	if r.Err() != nil || n.Version == 0 || checkName(n.Name) != nil || flags > 1 {
		return nil, false
	}
	if flags == 1 {
		w := &store.TeamWindows{}
		kind, v := r.U8("window kind"), r.U32("window")
		switch kind {
		case windowBusinessDays:
			w.BusinessDays = int(min(v, 1<<20))
		case windowBusinessMinutes:
			w.BusinessMinutes = int(min(v, 1<<20))
		default:
			return nil, false
		}
		w.Days = r.U8("business days")
		w.Open, w.Close = int(r.U16("opening")), int(r.U16("closing"))
		w.Zone = string(r.Take(int(r.U8("zone length")), "zone"))
		w.UrgentMinutes = int(min(r.U32("urgent window"), 1<<20))
		if r.Err() != nil || !validWindows(w) {
			return nil, false
		}
		n.Windows = w
	}
	return n, r.Err() == nil
}

// validWindows checks a notice's figures against the limits of SPEC
// section 15.2 (the agent's) and the zone's characters, so that what a
// team says can only be shown as figures.
func validWindows(w *store.TeamWindows) bool {
	switch {
	case w.BusinessDays != 0 && w.BusinessMinutes != 0,
		w.BusinessDays == 0 && (w.BusinessMinutes < 1 || w.BusinessMinutes > int(hours.MaxBusinessTime/time.Minute)),
		w.BusinessDays < 0 || w.BusinessDays > hours.MaxBusinessDays,
		w.Days == 0 || w.Days > 0x7f,
		w.Open < 0 || w.Open >= 24*60 || w.Close <= w.Open || w.Close > 24*60,
		w.UrgentMinutes < 1 || w.UrgentMinutes > int(hours.MaxUrgentWindow/time.Minute),
		!validZoneName(w.Zone):
		return false
	}
	return true
}

// validZoneName: 1..MaxTeamZoneSize bytes of the characters IANA zone
// names use. The receiver does not load the zone: it only shows the name.
func validZoneName(z string) bool {
	if z == "" || len(z) > MaxTeamZoneSize {
		return false
	}
	for _, r := range z {
		switch {
		case r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '/', r == '_', r == '-', r == '+':
		default:
			return false
		}
	}
	return true
}

// publicTeamNotice is the library's view of a stored notice.
func publicTeamNotice(n *store.TeamNotice) *TeamNotice {
	if n == nil {
		return nil
	}
	out := &TeamNotice{Name: n.Name, Version: n.Version, Received: n.At}
	if w := n.Windows; w != nil {
		pw := &TeamWindows{BusinessDays: w.BusinessDays, BusinessTime: time.Duration(w.BusinessMinutes) * time.Minute,
			Open: clockOf(w.Open), Close: clockOf(w.Close), Zone: w.Zone, Urgent: time.Duration(w.UrgentMinutes) * time.Minute}
		for d := range 7 {
			if w.Days&(1<<d) != 0 {
				pw.Days = append(pw.Days, time.Weekday(d))
			}
		}
		out.Windows = pw
	}
	return out
}

func clockOf(min int) string { return fmt.Sprintf("%02d:%02d", min/60, min%60) }

// parseClockMinutes reads "HH:MM" (00:00..24:00) as minutes after
// midnight.
func parseClockMinutes(s string) (int, bool) {
	var h, m int
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	if _, err := fmt.Sscanf(s, "%02d:%02d", &h, &m); err != nil || h > 24 || m > 59 || (h == 24 && m != 0) {
		return 0, false
	}
	return h*60 + m, true
}

// windowsOf are the figures of the agent's options o (valid: agentEscalator
// accepted them), with the defaults of SPEC section 15.2 filled in.
func windowsOf(o *AgentOptions) (*store.TeamWindows, error) {
	w := &store.TeamWindows{Zone: o.Zone}
	switch {
	case o.WindowBusiness != 0:
		w.BusinessMinutes = int(o.WindowBusiness / time.Minute)
	case o.WindowDays != 0:
		w.BusinessDays = o.WindowDays
	default:
		w.BusinessDays = hours.DefaultBusinessDays
	}
	days := o.Days
	if days == nil {
		days = hours.DefaultDays
	}
	for _, d := range days {
		w.Days |= 1 << d
	}
	open, close := o.Open, o.Close
	if open == "" {
		open = hours.DefaultOpen
	}
	if close == "" {
		close = hours.DefaultClose
	}
	var ok1, ok2 bool
	w.Open, ok1 = parseClockMinutes(open)
	w.Close, ok2 = parseClockMinutes(close)
	urgent := o.Urgent
	if urgent == 0 {
		urgent = hours.DefaultUrgentWindow
	}
	w.UrgentMinutes = int(urgent / time.Minute)
	if !ok1 || !ok2 || !validWindows(w) {
		// A zone name with other characters (none in the IANA
		// database), for one: the notice goes without figures.
		return nil, fmt.Errorf("%w: the response windows cannot be stated in a team notice", ErrAgentSettings)
	}
	return w, nil
}

func sameWindows(a, b *store.TeamWindows) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// setTeamWindows, on the intake, records the response windows the agent
// runs with; if they differ from the ones the team stated before, the
// notice gets a new version and is due to every outsider.
func (c *Client) setTeamWindows(gid []byte, w *store.TeamWindows) error {
	c.teamMu.Lock()
	defer c.teamMu.Unlock()
	return c.st.update(func(t *tx) error {
		r, err := t.Team(t.GroupConversationID(gid))
		if err != nil || r == nil {
			return errors.Join(err, ErrUnknownTeam)
		}
		if sameWindows(r.Windows, w) {
			return nil
		}
		r.Windows, r.NoticeVersion, r.NoticeDue = w, noticeVersionOf(r)+1, true
		return t.PutTeam(r)
	})
}

// noticeVersionOf is the version of what team r's notice says now: a
// team made before notices says version 1, without windows.
func noticeVersionOf(r *store.TeamRecord) uint32 { return max(r.NoticeVersion, 1) }

// noticeDue, in the intake's receive transaction, marks the notice due if
// outsider q has not been sent the current one; it reports whether it did.
func noticeDue(team *store.TeamRecord, q *store.QueueRecord) bool {
	if q.NoticeSent >= noticeVersionOf(team) || team.NoticeDue {
		return false
	}
	team.NoticeDue = true
	return true
}

// noticeForNewDevice, on a team's intake in the receive transaction that
// gives device dev (a record ID) of person p its first route, makes the
// team notice due to that device when p is an outsider of the team who
// was sent it already: a device the outsider linked later learns the
// notice now, not at the team's next version. Bounded per outsider by
// MaxQueueSenders (a device list holds fewer devices).
func (c *Client) noticeForNewDevice(t *tx, p *store.Person, dev []byte, res *received) error {
	if p.Self || p.ViaGroup {
		return nil
	}
	ts, err := t.Teams()
	if err != nil {
		return err
	}
	for _, team := range ts {
		if !team.Intake {
			continue
		}
		qs, err := t.Queues(team.Group)
		if err != nil {
			return err
		}
		for _, q := range qs {
			if !bytes.Equal(q.Person, p.ID) || q.NoticeSent == 0 || len(q.NoticeDevices) >= store.MaxQueueSenders ||
				slices.ContainsFunc(q.NoticeDevices, func(b []byte) bool { return bytes.Equal(b, dev) }) {
				continue // not yet sent one: the first flush sends every device the notice
			}
			q.NoticeDevices = append(q.NoticeDevices, bytes.Clone(dev))
			if err := t.PutQueue(q); err != nil {
				return err
			}
			if !team.NoticeDue {
				team.NoticeDue = true
				if err := t.PutTeam(team); err != nil {
					return err
				}
			}
			res.teams = true
		}
	}
	return nil
}

// flushNotices sends, on a team's intake, the current team notice to every
// outsider who has not been sent it, and records each one sent. Called by
// flushTeams (under teamMu). The flag is cleared only when every outsider
// holds the current version, so a failure is retried at the next flush.
func (c *Client) flushNotices(ctx context.Context, team *store.TeamRecord) {
	version := noticeVersionOf(team)
	type due struct {
		q    *store.QueueRecord
		devs []*contactRecord
	}
	var dues []due
	err := c.st.view(func(t *tx) error {
		qs, err := t.Queues(team.Group)
		if err != nil {
			return err
		}
		for _, q := range qs {
			later := q.NoticeSent >= version // only devices linked later, if any
			if len(q.Person) == 0 || (later && len(q.NoticeDevices) == 0) {
				continue
			}
			p, err := t.Person(q.Person)
			if err != nil {
				return err
			}
			if p == nil || p.Blocked || p.Self || p.ViaGroup {
				continue // gone: nothing to tell
			}
			devs, err := c.targets(t, p)
			if err != nil {
				return err
			}
			if later {
				devs = slices.DeleteFunc(devs, func(d *contactRecord) bool {
					return !slices.ContainsFunc(q.NoticeDevices, func(b []byte) bool { return bytes.Equal(b, d.ID) })
				})
			}
			dues = append(dues, due{q: q, devs: devs})
		}
		return nil
	})
	if err != nil {
		c.log.Warn("could not read a team's outsiders", "err", err)
		return
	}
	wire := &teamNoticeWire{Version: version, Name: team.Name, Windows: team.Windows}
	copy(wire.Team[:], team.IntakeIdentity)
	failed := false
	for _, d := range dues {
		sent := 0
		for _, dev := range d.devs {
			ct := &content{Type: contentTeamNotice, Sender: c.devID, SentMS: uint64(c.now().UnixMilli()), Notice: wire}
			copy(ct.MsgID[:], randomID(msgIDSize))
			err := c.sendSession(ctx, dev, ct)
			switch {
			case err == nil, errors.Is(err, ErrQueued):
				// ErrQueued: the outbox holds it and delivers it later.
			case errors.Is(err, ErrBlocked), errors.Is(err, ErrInvitationSpent):
				// It can never arrive: not retried, as a staff reply.
				c.log.Info("a team notice cannot be delivered", "err", err)
			default:
				c.log.Info("could not send a team notice yet; will retry", "err", err)
				continue
			}
			sent++
		}
		if sent < len(d.devs) {
			failed = true
			continue
		}
		if err := c.st.update(func(t *tx) error {
			q, err := t.Queue(d.q.ID)
			if err != nil || q == nil {
				return err
			}
			q.NoticeSent = version
			// Every device it could go to was sent it, those linked later
			// among them (one no longer routable is not owed it); a
			// device linked meanwhile stays due.
			q.NoticeDevices = slices.DeleteFunc(q.NoticeDevices, func(b []byte) bool {
				return slices.ContainsFunc(d.q.NoticeDevices, func(x []byte) bool { return bytes.Equal(b, x) })
			})
			return t.PutQueue(q)
		}); err != nil {
			c.log.Warn("could not record a team notice as sent", "err", err)
			failed = true
		}
	}
	if failed {
		return
	}
	if err := c.st.update(func(t *tx) error {
		r, err := t.Team(team.ID)
		if err != nil || r == nil || noticeVersionOf(r) != version {
			return err // a newer version came meanwhile: it stays due
		}
		r.NoticeDue = false
		return t.PutTeam(r)
	}); err != nil {
		c.log.Warn("could not record the team notices as sent", "err", err)
	}
}

// receiveTeamNotice takes a team notice from device from, in the receive
// transaction: only about the sender's own person (the identity it names
// is the person's), a contact (not this person, not known only through a
// group), who did not accept one of this device's invitations (a team's
// outsiders accept the team's invitation, never the other way round), and
// at a version not older than the one held. Anything else changes
// nothing. It reports whether it took it.
func (c *Client) receiveTeamNotice(t *tx, from *contactRecord, ct *content, now time.Time) (bool, error) {
	n := ct.Notice
	p := from.Person
	if p.Self || p.ViaGroup || !bytes.Equal(n.Team[:], p.Identity) {
		c.log.Info("dropped a team notice that is not about its sender")
		return false, nil
	}
	invited, err := invitedBy(t, p.Identity)
	if err != nil {
		return false, err
	}
	if invited {
		c.log.Info("dropped a team notice from a contact who accepted this device's invitation")
		return false, nil
	}
	if p.Team != nil && n.Version < p.Team.Version {
		return false, nil // older than the one held: a late envelope
	}
	p.Team = &store.TeamNotice{Version: n.Version, Name: n.Name, Sent: min(ct.SentMS, 1<<62), At: now.UTC(), Windows: n.Windows}
	return true, t.PutPerson(p)
}

// invitedBy reports whether one of this device's invitations was used by
// identity: the person accepted our invitation.
func invitedBy(t *tx, identity []byte) (bool, error) {
	found := false
	err := t.Each(bucketInvitations, func(_, v []byte) error {
		var inv invitationRecord
		if err := jsonUnmarshal(v, &inv); err != nil {
			return err
		}
		if inv.Used && bytes.Equal(inv.UsedBy, identity) {
			found = true
		}
		return nil
	})
	return found, err
}
