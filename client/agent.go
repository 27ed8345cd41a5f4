package client

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/client/internal/team/agent"
	"github.com/postern/postern/client/internal/team/hours"
	"github.com/postern/postern/client/internal/team/queue"
	"github.com/postern/postern/client/internal/team/stats"
)

// The team agent (protocol/SPEC.md section 15.2 "The team agent"): the
// team's intake device, run unattended (`postern agent --team NAME`),
// keeps the queue's response windows. It receives (and so forwards what
// outsiders write), decides with package hours when a conversation waits
// too long, sends the content-free wake-ups, and keeps the figures' events
// in its store. The relay never decides any of it: it cannot read a
// conversation's state.

// ErrNotIntake: RunAgent on a profile that is not the team's own.
var ErrNotIntake = errors.New("client: the team agent runs on the team's own profile (the one 'team create' made the team)")

// ErrAgentSettings: RunAgent's options are not valid (the message says
// which); nothing was started.
var ErrAgentSettings = errors.New("client: the team agent's settings are not valid")

// AgentOptions are a team queue's business hours, windows and where its
// wake-ups go. The zero value means the defaults of SPEC section 15.2,
// except that a time zone and a place for wake-ups are required.
type AgentOptions struct {
	// Zone is the team's IANA time zone ("Europe/Berlin"). Required.
	Zone string
	// Days are the business days (nil: Monday to Friday); Open and Close
	// the opening hours "HH:MM" ("": 08:00 and 17:00).
	Days        []time.Weekday
	Open, Close string
	// Holidays is the holiday calendar (lines or iCalendar, docs/TEAMS.md);
	// Roster the on-call roster. Nil means none.
	Holidays, Roster io.Reader
	// WindowDays is the response window in business days (0: 3);
	// WindowBusiness, if set instead, in business time.
	WindowDays     int
	WindowBusiness time.Duration
	// Urgent is the urgent window (0: 2 hours); Reminder the interval of
	// reminders about an unread urgent message (0: 15 minutes).
	Urgent, Reminder time.Duration
	// EscalateTo is the group (a name or ID) that wake-ups go to when
	// the roster names nobody. With neither, they go to the staff.
	EscalateTo string

	// Clock and After replace time.Now and time.After (tests).
	Clock func() time.Time
	After func(time.Duration) <-chan time.Time
}

// agentEscalator builds the escalator of team (named name) from o.
func agentEscalator(name string, o *AgentOptions) (*hours.Escalator, error) {
	bad := func(err error) error { return fmt.Errorf("%w: %v", ErrAgentSettings, err) }
	if o.Zone == "" {
		return nil, fmt.Errorf("%w: the team's time zone is required (an IANA name such as Europe/Berlin)", ErrAgentSettings)
	}
	so := &hours.ScheduleOptions{Days: o.Days, Open: o.Open, Close: o.Close}
	if o.Holidays != nil {
		h, err := hours.ParseHolidays(o.Holidays)
		if err != nil {
			return nil, bad(err)
		}
		so.Holidays = h
	}
	sched, err := hours.NewSchedule(o.Zone, so)
	if err != nil {
		return nil, bad(err)
	}
	ho := hours.Options{Team: name, Urgent: o.Urgent, Reminder: o.Reminder, EscalationGroup: o.EscalateTo, Clock: o.Clock}
	switch {
	case o.WindowDays != 0 && o.WindowBusiness != 0:
		return nil, fmt.Errorf("%w: a window in business days or in business time, not both", ErrAgentSettings)
	case o.WindowDays != 0:
		ho.Window = hours.BusinessDays(o.WindowDays)
	case o.WindowBusiness != 0:
		ho.Window = hours.BusinessTime(o.WindowBusiness)
	}
	if o.Roster != nil {
		if ho.Roster, err = hours.ParseRoster(o.Roster, sched.Location()); err != nil {
			return nil, bad(err)
		}
	}
	if ho.EscalationGroup == "" && ho.Roster == nil {
		// The staff themselves: the escalator sends to its recipients
		// when its group is the staff group (teamAgent.WakeUp).
		ho.EscalationGroup = name
	}
	esc, err := hours.NewEscalator(sched, ho)
	if err != nil {
		return nil, bad(err)
	}
	return esc, nil
}

// RunAgent runs the agent of team, which must be this profile's own team
// (ErrNotIntake otherwise), until ctx ends or receiving fails: it stays
// connected, forwards what outsiders write, and sends the wake-ups of the
// team's response windows. It returns ctx's error when ctx ends.
func (c *Client) RunAgent(ctx context.Context, team string, o *AgentOptions) error {
	if o == nil {
		o = &AgentOptions{}
	}
	rec, err := c.intakeTeam(team)
	if errors.Is(err, ErrNotTeamAdmin) {
		return ErrNotIntake
	}
	if err != nil {
		return err
	}
	esc, err := agentEscalator(rec.Name, o)
	if err != nil {
		return err
	}
	// The windows the team states to its outsiders (teamnotice.go): a
	// change is told to each of them once.
	if w, err := windowsOf(o); err != nil {
		c.log.Warn("the team notice goes without response windows", "err", err)
	} else if err := c.setTeamWindows(rec.Group, w); err != nil {
		return err
	}
	a := &teamAgent{c: c, gid: [16]byte(rec.Group), name: rec.Name, escalateTo: o.EscalateTo, clock: o.Clock}
	if a.clock == nil {
		a.clock = time.Now
	}
	r, err := agent.New(agent.Options{Escalator: esc, Queue: a, Records: a, Events: a.keep,
		QueueID: stats.QueueID(a.gid), Clock: o.Clock, After: o.After, Logger: c.log})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	recvErr := make(chan error, 1)
	go func() {
		for {
			if _, err := c.Receive(ctx); err != nil {
				recvErr <- err
				cancel()
				return
			}
			r.Poke()
		}
	}()
	c.log.Info("team agent started", "zone", o.Zone)
	err = r.Run(ctx)
	select {
	case rerr := <-recvErr:
		if !errors.Is(rerr, context.Canceled) {
			return fmt.Errorf("client: the team agent stopped receiving: %w", rerr)
		}
	default:
	}
	return err
}

// teamAgent is the queue and the records of a team agent: the client's
// queue conversations and its store.
type teamAgent struct {
	c          *Client
	gid        [16]byte
	name       string
	escalateTo string
	clock      func() time.Time
	// routesRead is when Open last read the registers of the answered
	// open conversations from the relay (readRouteRegisters).
	routesRead time.Time
}

// routeReadEvery is how often the agent reads the registers of the
// conversations whose outsiders hold a reply route: as often as it lists
// the queue when nothing pokes it.
const routeReadEvery = agent.DefaultMaxWait

// Open lists the team's open conversations; it also keeps the events of
// their registers (teamEvents) so the figures follow the queue.
func (a *teamAgent) Open(ctx context.Context) ([]agent.Item, error) {
	// A close the intake learns only from the relay's register (the
	// staff device's state change lost) drops the outsider's reply
	// routes as a received one does, carried out at once (teamroutes.go).
	if now := a.clock(); a.routesRead.IsZero() || now.Sub(a.routesRead) >= routeReadEvery {
		took, err := a.c.readRouteRegisters(ctx, a.gid[:])
		if err != nil {
			a.c.log.Warn("could not read the team's registers yet; will retry", "err", err)
		} else {
			a.routesRead = now
		}
		if took {
			a.c.flushTeams(ctx)
		}
	}
	var items []agent.Item
	err := a.c.st.update(func(t *tx) error {
		items = items[:0]
		return a.c.forQueue(t, a.gid[:], func(tok stats.Token, qt *queueTarget, v queue.Value) error {
			if err := a.c.keepRegisterEvents(t, a.gid, tok, v, a.clock()); err != nil {
				return err
			}
			if v.State.Closed() {
				return nil
			}
			conv := hours.Conversation{Received: msTime(v.Opened), Urgent: v.Urgent, Answered: msTime(v.FirstResponse)}
			if conv.Received.IsZero() {
				conv.Received = qt.q.Created
			}
			if qt.q.ReadSent >= v.Opened && !qt.q.ReadAt.IsZero() {
				// A queue receipt reported a message of this opening (or
				// a later one) read (queuereceipts.go); a read dated
				// before the opening by a clock behind still counts.
				conv.Read = qt.q.ReadAt
				if conv.Read.Before(conv.Received) {
					conv.Read = conv.Received
				}
			}
			if v.State == queue.Claimed || v.State == queue.Assigned {
				// Someone took it, so someone read it: claims carry no
				// time of their own, and a queue receipt is not needed
				// to stop the reminders of a conversation a colleague
				// owns.
				conv.Claimed, conv.Read = conv.Received, conv.Received
			}
			items = append(items, agent.Item{Token: tok, Conversation: conv})
			return nil
		})
	})
	return items, err
}

// WakeUp sends w: to the escalation group, to the contact on call, or to
// the staff (the staff group).
func (a *teamAgent) WakeUp(ctx context.Context, w hours.WakeUp) error {
	o := &SendOptions{Urgent: w.Urgent}
	var err error
	switch {
	case w.Target.Kind == hours.TargetOnCall:
		_, err = a.c.SendWith(ctx, w.Target.Name, w.Text, o)
	case w.Target.Kind == hours.TargetGroup && a.escalateTo != "":
		_, err = a.c.SendGroup(ctx, w.Target.Name, w.Text, o)
	default:
		_, err = a.c.SendGroup(ctx, hex.EncodeToString(a.gid[:]), w.Text, o)
	}
	return err
}

func (a *teamAgent) Record(tok stats.Token) (hours.Record, error) {
	var r *store.AgentRecord
	err := a.c.st.view(func(t *tx) error {
		var err error
		r, err = t.AgentRecord(a.gid[:], tok[:])
		return err
	})
	if err != nil || r == nil {
		return hours.Record{}, err
	}
	return hours.Record{Received: r.Received, Business: r.Business, Urgent: r.Urgent, Reminders: r.Reminders}, nil
}

func (a *teamAgent) SetRecord(tok stats.Token, h hours.Record) error {
	return a.c.st.update(func(t *tx) error {
		return t.PutAgentRecord(&store.AgentRecord{Team: a.gid[:], Token: tok[:], Received: h.Received.UTC(),
			Business: h.Business, Urgent: h.Urgent, Reminders: h.Reminders})
	})
}

func (a *teamAgent) Prune(open map[stats.Token]bool) error {
	return a.c.st.update(func(t *tx) error {
		return t.PruneAgentRecords(a.gid[:], func(tok []byte) bool { return open[stats.Token(tok)] })
	})
}

// keep stores an escalation event and, in the same transaction, its
// entry in the team log (the agent's identity the actor).
func (a *teamAgent) keep(e stats.Event) error {
	b, err := e.MarshalBinary()
	if err != nil {
		return err
	}
	return a.c.st.update(func(t *tx) error {
		if t.HasTeamEvent(a.gid[:], e.ID[:]) {
			return nil
		}
		if err := t.PutTeamEvent(a.gid[:], b); err != nil {
			return err
		}
		return a.c.appendTeamLog(t, a.gid[:], stats.Entry{Time: e.Time, Kind: stats.LogEscalation,
			Detail: uint8(e.Escalation), Actor: a.c.idFP, Subject: e.Conversation})
	})
}

func msTime(ms uint64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(ms)).UTC()
}

// forQueue calls fn with each queue conversation of the team whose staff
// group is gid: its claim token, its target and its register's value.
func (c *Client) forQueue(t *tx, gid []byte, fn func(stats.Token, *queueTarget, queue.Value) error) error {
	qs, err := t.Queues(gid)
	if err != nil {
		return err
	}
	for _, q := range qs {
		qt := &queueTarget{q: q}
		copy(qt.conv[:], q.Conversation)
		if err := c.completeTarget(t, qt); err != nil {
			return err
		}
		_, v, err := c.itemOf(t, qt)
		if err != nil {
			return err
		}
		if err := fn(stats.Token(qt.space.Token(qt.conv)), qt, v); err != nil {
			return err
		}
	}
	return nil
}

// eventID is the ID of the event of type typ that the register's value
// implies for the conversation's opening n (its reopen count): the same
// on every device and at every sweep, so that keeping it again changes
// nothing (SPEC 15.8 "Counting").
func eventID(tok stats.Token, typ stats.EventType, n uint32) stats.EventID {
	h := sha256.New()
	h.Write([]byte("postern.v1 team-event"))
	h.Write(tok[:])
	var b [5]byte
	b[0] = byte(typ)
	binary.BigEndian.PutUint32(b[1:], n)
	h.Write(b[:])
	return stats.EventID(h.Sum(nil)[:stats.EventIDSize])
}

// keepRegisterEvents keeps the events that value v of conversation tok
// implies: claimed (at now, the first time it is seen: a claim carries no
// time), first response, resolved, archived and reopened (at the times
// the value carries), each once per opening.
func (c *Client) keepRegisterEvents(t *tx, gid [16]byte, tok stats.Token, v queue.Value, now time.Time) error {
	add := func(typ stats.EventType, at time.Time) error {
		if at.IsZero() {
			return nil
		}
		e := stats.Event{ID: eventID(tok, typ, v.Reopens), Type: typ, Time: time.UnixMilli(at.UnixMilli()).UTC(),
			Queue: stats.QueueID(gid), Conversation: tok}
		b, err := e.MarshalBinary()
		if err != nil {
			return err
		}
		return t.PutTeamEvent(gid[:], b)
	}
	var errs []error
	if v.State == queue.Claimed || v.State == queue.Assigned {
		errs = append(errs, add(stats.Claimed, now))
	}
	errs = append(errs, add(stats.FirstResponse, msTime(v.FirstResponse)))
	if v.State == queue.Resolved || v.State == queue.Archived {
		errs = append(errs, add(stats.Resolved, msTime(v.Resolved)))
	}
	if v.State == queue.Archived {
		errs = append(errs, add(stats.Archived, now))
	}
	if v.Reopens > 0 {
		errs = append(errs, add(stats.Reopened, msTime(v.Opened)))
	}
	return errors.Join(errs...)
}

// TeamFigures are a team's workflow figures: counts and durations, no
// content, names or tokens (SPEC 15.8). MarshalJSON gives the document
// of `postern team stats NAME --json`; WritePrometheus the metrics.
type TeamFigures struct{ snap stats.Snapshot }

// MarshalJSON writes the figures' JSON document.
func (f TeamFigures) MarshalJSON() ([]byte, error) { return json.Marshal(f.snap) }

// WritePrometheus writes the figures in the Prometheus text format.
func (f TeamFigures) WritePrometheus(w io.Writer) error { return f.snap.WritePrometheus(w) }

// TeamFigures returns the figures of team as this device knows them: the
// queue's registers on any staff device; on the team's agent also the
// messages that arrived and the escalations it sent.
func (c *Client) TeamFigures(team string) (TeamFigures, error) {
	now := time.Now()
	st := stats.New(&stats.Options{Clock: func() time.Time { return now }})
	var name string
	err := c.st.update(func(t *tx) error {
		rec, err := t.lookupTeam(team)
		if err != nil {
			return err
		}
		gid := [16]byte(rec.Group)
		name = rec.Name
		if err := st.NameQueue(stats.QueueID(gid), rec.Name); err != nil {
			return err
		}
		if err := c.forQueue(t, rec.Group, func(tok stats.Token, qt *queueTarget, v queue.Value) error {
			if err := c.keepRegisterEvents(t, gid, tok, v, now); err != nil {
				return err
			}
			return nil
		}); err != nil {
			return err
		}
		if err := c.keepArrivals(t, rec); err != nil {
			return err
		}
		return t.TeamEvents(rec.Group, func(b []byte) error {
			e, err := stats.ParseEvent(b)
			if err != nil {
				return err
			}
			_, err = st.Add(e)
			return err
		})
	})
	if err != nil {
		return TeamFigures{}, err
	}
	snap, _ := st.SnapshotAt(now).Only(name)
	return TeamFigures{snap: snap}, nil
}

// keepArrivals keeps a message-arrived event for every message of an
// outsider this device holds in team rec's queue conversations: on the
// intake in its direct conversation with the outsider, on a staff device
// in the queue conversation.
func (c *Client) keepArrivals(t *tx, rec *store.TeamRecord) error {
	type conv struct {
		q     *store.QueueRecord
		tok   stats.Token
		staff bool
	}
	space, err := spaceOf(rec)
	if err != nil {
		return err
	}
	qs, err := t.Queues(rec.Group)
	if err != nil {
		return err
	}
	by := map[string]conv{}
	for _, q := range qs {
		tok := stats.Token(space.Token(queue.ConversationID(q.Conversation)))
		if rec.Intake && q.Person != nil {
			by[string(t.DirectConversationID(q.Person))] = conv{q: q, tok: tok}
		} else if !rec.Intake {
			by[string(q.ID)] = conv{q: q, tok: tok, staff: true}
		}
	}
	gid := stats.QueueID(rec.Group)
	return t.Messages(func(m *messageRecord) error {
		cv, ok := by[string(m.Conversation)]
		if !ok || m.Outgoing || m.Notice || (cv.staff && m.From != cv.q.Outsider) {
			return nil
		}
		h := sha256.New()
		h.Write([]byte("postern.v1 team-event"))
		h.Write(cv.tok[:])
		h.Write([]byte{byte(stats.MessageArrived)})
		h.Write([]byte(m.ID))
		at := m.Received
		if at.IsZero() {
			at = m.Time
		}
		e := stats.Event{ID: stats.EventID(h.Sum(nil)[:stats.EventIDSize]), Type: stats.MessageArrived,
			Time: time.UnixMilli(at.UnixMilli()).UTC(), Queue: gid, Conversation: cv.tok}
		b, err := e.MarshalBinary()
		if err != nil {
			return nil // a time events cannot carry: not counted
		}
		return t.PutTeamEvent(rec.Group, b)
	})
}

// TeamFiguresHandler serves team's figures over HTTP (GET /metrics,
// /stats.json, /healthz), read afresh from the store at each request.
func (c *Client) TeamFiguresHandler(team string) http.Handler {
	return agent.Handler(func() (stats.Snapshot, error) {
		f, err := c.TeamFigures(team)
		return f.snap, err
	})
}
