package queue

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestProtocolRuns plays the claim protocol of SPEC.md 15.4 as
// model/claim.pml does, with this package's code on every device and the
// relay's compare-and-set of section 10: three staff devices (0 an admin,
// 2 removed mid-run), two conversations, a patient who writes, answers
// lost in relay restarts (the request applied or not), state changes
// delivered in any order and some twice, and the removal replacing the
// write capability, which reaches the others at times of their own. After
// every step no two current staff devices hold different values at one
// version and a device at the register's version holds its value; at the
// end every current staff device's view equals the register and the
// removed member owns nothing. The runs are random with fixed seeds; the
// events the model's witnesses name must each happen in some run.
func TestProtocolRuns(t *testing.T) {
	runs := 3000
	if testing.Short() {
		runs = 300
	}
	var seen simEvents
	for seed := range runs {
		sim := newSim(t, uint64(seed))
		sim.run()
		seen.add(sim.events)
	}
	for name, n := range seen.named() {
		if n == 0 {
			t.Errorf("no run had %s: the runs do not reach it", name)
		}
	}
	t.Logf("events over %d runs: %+v", runs, seen)
}

type simEvents struct {
	conflicts, refusedStaff, refusedLeaver, lostLanded, lostDropped, reassigned, reopened, duplicates, stale int
}

func (e *simEvents) add(o simEvents) {
	e.conflicts += o.conflicts
	e.refusedStaff += o.refusedStaff
	e.refusedLeaver += o.refusedLeaver
	e.lostLanded += o.lostLanded
	e.lostDropped += o.lostDropped
	e.reassigned += o.reassigned
	e.reopened += o.reopened
	e.duplicates += o.duplicates
	e.stale += o.stale
}

func (e simEvents) named() map[string]int {
	return map[string]int{
		"a lost compare-and-set": e.conflicts, "a remaining member refused for its old capability": e.refusedStaff,
		"the removed member refused": e.refusedLeaver, "a lost answer of an applied write": e.lostLanded,
		"a request lost before it was applied": e.lostDropped, "an admin's reassignment": e.reassigned,
		"a reopen": e.reopened, "a state change delivered twice": e.duplicates, "a state change older than the view": e.stale,
	}
}

const (
	simDevices = 3
	simAdmin   = 0
	simLeaver  = 2
	simConvs   = 2
)

type simMsg struct {
	from int
	ch   Change
}

type simDevice struct {
	me      Actor
	view    *View
	inbox   []simMsg
	req     *Request // in flight
	reqCap  int
	lost    bool // a restart dropped the request or its answer
	answer  *[3]any
	knows   bool             // holds the new capability and staff list
	patient [simConvs]bool   // a patient's message to act on
	scan    []ConversationID // the admin's scan after the removal
}

type sim struct {
	t        *testing.T
	seed     uint64
	r        *rand.Rand
	s        *Space
	relay    *relayRegister
	devs     [simDevices]*simDevice
	removed  bool
	ops      int
	pmsgs    int
	restarts int
	now      uint64
	events   simEvents
	convs    [simConvs]ConversationID
	pending  []struct {
		dev int
		req *Request
		cap int
	}
}

func newSim(t *testing.T, seed uint64) *sim {
	m := &sim{t: t, seed: seed, r: rand.New(rand.NewPCG(seed, 0x5eed)), s: newTestSpace(t), relay: newRelayRegister(), now: t0}
	for i := range m.devs {
		role := Staff
		if i == simAdmin {
			role = Admin
		}
		m.devs[i] = &simDevice{me: Actor{Identity: ident(byte(10 + i)), Role: role}, view: NewView()}
	}
	m.convs = [simConvs]ConversationID{conv(1), conv(2)}
	m.ops = 3 + m.r.IntN(6)
	m.pmsgs = m.r.IntN(3)
	m.restarts = m.r.IntN(3)
	return m
}

func (m *sim) fail(format string, args ...any) {
	m.t.Helper()
	m.t.Fatalf("run %d: "+format, append([]any{m.seed}, args...)...)
}

func (m *sim) staff(i int) bool { return !(m.removed && i == simLeaver) }

// run takes random enabled steps until none is left.
func (m *sim) run() {
	for steps := 0; ; steps++ {
		if steps > 10000 {
			m.fail("no quiescence after 10000 steps")
		}
		acts := m.enabled()
		if len(acts) == 0 {
			break
		}
		acts[m.r.IntN(len(acts))]()
		m.checkViews()
	}
	m.checkEnd()
}

func (m *sim) enabled() []func() {
	var acts []func()
	for i, d := range m.devs {
		// deliveries
		for j := range d.inbox {
			acts = append(acts, func() { m.deliver(i, j, false) })
			if m.r.IntN(8) == 0 {
				acts = append(acts, func() { m.deliver(i, j, true) })
			}
		}
		if d.req != nil || d.answer != nil || d.lost {
			if d.answer != nil || d.lost {
				acts = append(acts, func() { m.handleAnswer(i) })
			}
			continue
		}
		if m.removed && !d.knows && i != simLeaver {
			acts = append(acts, func() { d.knows = true })
		}
		if len(d.scan) > 0 {
			acts = append(acts, func() { m.scanNext(i) })
			continue
		}
		stale := m.removed && !d.knows
		for ci, c := range m.convs {
			if d.patient[ci] && !stale {
				acts = append(acts, func() { m.patientArrives(i, ci) })
			}
			if m.ops > 0 && !stale {
				acts = append(acts, func() { m.operate(i, c) })
			}
		}
	}
	if len(m.pending) > 0 {
		acts = append(acts, m.relayStep)
		if m.restarts > 0 {
			acts = append(acts, m.restart)
		}
	}
	if !m.removed && m.devs[simAdmin].req == nil && m.devs[simAdmin].answer == nil && !m.devs[simAdmin].lost {
		acts = append(acts, m.remove)
	}
	if m.pmsgs > 0 {
		acts = append(acts, m.patientWrites)
	}
	return acts
}

func (m *sim) send(i int, req *Request) {
	d := m.devs[i]
	d.req = req
	capab := 0
	if m.removed && (d.knows || i == simAdmin) && i != simLeaver {
		capab = 1
	}
	m.pending = append(m.pending, struct {
		dev int
		req *Request
		cap int
	}{i, req, capab})
}

// operate makes a random operation the device's view allows.
func (m *sim) operate(i int, c ConversationID) {
	d := m.devs[i]
	cur := d.view.Current(c, Initial(t0, false))
	m.now++
	var colleagues []Actor
	for j, o := range m.devs {
		if j != i && !(j == simLeaver && (d.knows || (m.removed && i == simAdmin))) {
			colleagues = append(colleagues, o.me)
		}
	}
	to := colleagues[m.r.IntN(len(colleagues))]
	choices := []struct {
		op Op
		f  func() (Value, error)
	}{
		{OpClaim, func() (Value, error) { return Claim(cur.Value, d.me) }},
		{OpAssign, func() (Value, error) { return Assign(cur.Value, d.me, to) }},
		{OpResolve, func() (Value, error) { return Resolve(cur.Value, d.me, m.now) }},
		{OpArchive, func() (Value, error) { return Archive(cur.Value, d.me) }},
		{OpUrgent, func() (Value, error) { return SetUrgent(cur.Value, d.me, !cur.Value.Urgent) }},
		{OpRespond, func() (Value, error) { return Respond(cur.Value, d.me, m.now) }},
	}
	m.r.Shuffle(len(choices), func(a, b int) { choices[a], choices[b] = choices[b], choices[a] })
	for _, ch := range choices {
		next, err := ch.f()
		if err != nil {
			continue // the view does not allow it: nothing is written
		}
		req, err := m.s.Request(c, cur, ch.op, next)
		if err != nil {
			m.fail("Request: %v", err)
		}
		m.ops--
		m.send(i, req)
		return
	}
}

func (m *sim) patientArrives(i, ci int) {
	d := m.devs[i]
	c := m.convs[ci]
	cur := d.view.Current(c, Initial(t0, false))
	if !cur.Value.State.Closed() {
		d.patient[ci] = false // open: nothing to do
		return
	}
	m.now++
	next, err := Reopen(cur.Value, d.me, m.now, false)
	if err != nil {
		m.fail("Reopen from %s: %v", cur.Value.State, err)
	}
	req, err := m.s.Request(c, cur, OpReopen, next)
	if err != nil {
		m.fail("Request: %v", err)
	}
	d.patient[ci] = false
	m.send(i, req)
}

func (m *sim) patientWrites() {
	m.pmsgs--
	ci := m.r.IntN(simConvs)
	for i, d := range m.devs {
		if m.staff(i) {
			d.patient[ci] = true
		}
	}
}

// relayStep applies one pending request, in any order.
func (m *sim) relayStep() {
	k := m.r.IntN(len(m.pending))
	p := m.pending[k]
	m.pending = append(m.pending[:k], m.pending[k+1:]...)
	res, ver, val := m.relay.set(p.cap, p.req.Token, p.req.Expected, p.req.Sealed)
	if res == 1 {
		m.checkWriteRule(p.dev, p.req)
	}
	m.devs[p.dev].answer = &[3]any{res, ver, val}
}

// restart drops every request not yet applied and every answer not yet
// handled.
func (m *sim) restart() {
	m.restarts--
	for _, p := range m.pending {
		m.devs[p.dev].lost = true
		m.events.lostDropped++
	}
	m.pending = nil
	for _, d := range m.devs {
		if d.answer != nil {
			if d.answer[0].(int) == 1 {
				m.events.lostLanded++
			}
			d.answer = nil
			d.lost = true
		}
	}
}

func (m *sim) handleAnswer(i int) {
	d := m.devs[i]
	req := d.req
	var out Outcome
	var err error
	if d.lost {
		d.lost = false
		ver, val := m.relay.get(req.Token)
		out, err = m.s.AfterLost(d.view, req, ver, val)
	} else {
		res, ver, val := d.answer[0].(int), d.answer[1].(uint64), d.answer[2].([]byte)
		d.answer = nil
		switch res {
		case answerRefused:
			if i == simLeaver {
				m.events.refusedLeaver++
			} else {
				m.events.refusedStaff++
			}
			if req.Op == OpReopen {
				d.patient[m.convIndex(req.Conversation)] = true // tried again with the new capability
			}
			if req.Op == OpReassign {
				d.scan = append([]ConversationID{req.Conversation}, d.scan...)
			}
			d.req = nil
			return
		case 0:
			m.events.conflicts++
		}
		out, err = m.s.Answer(d.view, req, res == 1, ver, val)
	}
	if err != nil {
		m.fail("device %d: outcome of %s: %v", i, req.Op, err)
	}
	d.req = nil
	if out.Announce != nil {
		m.broadcast(i, Change{*out.Announce})
	}
	if out.Retry {
		d.patient[m.convIndex(req.Conversation)] = true
	}
	if req.Op == OpReassign && !out.Won {
		d.scan = append([]ConversationID{req.Conversation}, d.scan...) // read again
	}
	if req.Op == OpReopen && out.Won {
		m.events.reopened++
	}
	if req.Op == OpReassign && out.Won {
		m.events.reassigned++
	}
}

func (m *sim) convIndex(c ConversationID) int {
	for i, x := range m.convs {
		if x == c {
			return i
		}
	}
	m.fail("unknown conversation")
	return 0
}

func (m *sim) broadcast(from int, ch Change) {
	if !m.staff(from) {
		return // the team accepts nothing from a removed member
	}
	body, err := ch.MarshalBinary()
	if err != nil {
		m.fail("Change: %v", err)
	}
	for j, d := range m.devs {
		if j != from && m.staff(j) {
			parsed, err := ParseChange(body)
			if err != nil {
				m.fail("ParseChange: %v", err)
			}
			d.inbox = append(d.inbox, simMsg{from, parsed})
		}
	}
}

func (m *sim) deliver(i, j int, dup bool) {
	d := m.devs[i]
	msg := d.inbox[j]
	if !dup {
		d.inbox = append(d.inbox[:j], d.inbox[j+1:]...)
	} else {
		m.events.duplicates++
	}
	for _, e := range msg.ch {
		if r, ok := d.view.Get(e.Conversation); ok && r.Version >= e.Version {
			m.events.stale++
		}
	}
	if _, err := m.s.Receive(d.view, msg.ch); err != nil {
		m.fail("device %d: Receive: %v", i, err)
	}
}

// remove: the admin replaces the write capability, then scans every
// register.
func (m *sim) remove() {
	m.removed = true
	m.relay.mu.Lock()
	m.relay.cap = 1
	m.relay.mu.Unlock()
	a := m.devs[simAdmin]
	a.knows = true
	a.scan = append([]ConversationID(nil), m.convs[:]...)
	m.devs[simLeaver].inbox = nil // nothing more reaches it
}

// scanNext: the admin reads one register, applies and announces it, and
// reassigns it if the removed member owns it.
func (m *sim) scanNext(i int) {
	d := m.devs[i]
	c := d.scan[0]
	d.scan = d.scan[1:]
	ver, val := m.relay.get(m.s.Token(c))
	if ver == 0 {
		return
	}
	r, _, err := m.s.Learn(d.view, c, ver, val)
	if err != nil {
		m.fail("Learn: %v", err)
	}
	m.broadcast(i, Change{{c, ver, val}})
	leaver := m.devs[simLeaver].me.Identity
	if !r.Value.State.Open() || r.Value.Owner != leaver {
		return
	}
	cur, _ := d.view.Get(c)
	var next Value
	if m.r.IntN(2) == 0 {
		next, err = ReleaseRemoved(cur.Value, d.me, leaver)
	} else {
		next, err = ReassignRemoved(cur.Value, d.me, leaver, m.devs[m.r.IntN(2)].me) // a colleague, or the admin
	}
	if err != nil {
		// The view moved past the read (a state change came in between):
		// read again.
		d.scan = append([]ConversationID{c}, d.scan...)
		return
	}
	req, err := m.s.Request(c, cur, OpReassign, next)
	if err != nil {
		m.fail("Request: %v", err)
	}
	m.send(i, req)
}

// checkWriteRule is stays_claimed where a write lands.
func (m *sim) checkWriteRule(dev int, req *Request) {
	before := Initial(t0, false)
	if req.Expected > 0 {
		// The register held the value the device saw at Expected.
		r, ok := m.devs[dev].view.Get(req.Conversation)
		if !ok || r.Version != req.Expected {
			m.fail("device %d wrote from version %d it does not hold", dev, req.Expected)
		}
		before = r.Value
	}
	o := op{kind: req.Op, by: m.devs[dev].me, removed: m.devs[simLeaver].me.Identity}
	if req.Op == OpReassign && !m.removed {
		m.fail("a reassignment before the removal")
	}
	if !checkWrite(before, req.Value, o) {
		m.fail("device %d's %s from %+v to %+v breaks the rules", dev, req.Op, before, req.Value)
	}
}

// checkViews is never_two_owners.
func (m *sim) checkViews() {
	for _, c := range m.convs {
		ver, val := m.relay.get(m.s.Token(c))
		for i, d := range m.devs {
			if !m.staff(i) {
				continue
			}
			r, ok := d.view.Get(c)
			if ok && r.Version == ver && !bytes.Equal(r.Sealed, val) {
				m.fail("device %d at the register's version %d holds another value", i, ver)
			}
			for j := i + 1; j < simDevices; j++ {
				if !m.staff(j) {
					continue
				}
				q, ok2 := m.devs[j].view.Get(c)
				if ok && ok2 && r.Version == q.Version && r.Value != q.Value {
					m.fail("devices %d and %d hold two values at version %d: %+v and %+v", i, j, r.Version, r.Value, q.Value)
				}
			}
		}
	}
}

// checkEnd is converged and staff_owner.
func (m *sim) checkEnd() {
	leaver := m.devs[simLeaver].me.Identity
	for _, c := range m.convs {
		ver, val := m.relay.get(m.s.Token(c))
		if ver > 0 {
			v, err := m.s.Open(c, val)
			if err != nil {
				m.fail("the register does not open: %v", err)
			}
			if m.removed && v.State.Open() && v.Owner == leaver {
				m.fail("the removed member owns a conversation at the end")
			}
		}
		for i, d := range m.devs {
			if !m.staff(i) {
				continue
			}
			r, _ := d.view.Get(c)
			if r.Version != ver || !bytes.Equal(r.Sealed, val) {
				m.fail("device %d ends at version %d, the register at %d", i, r.Version, ver)
			}
		}
	}
}
