package hours

import (
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"
)

// Defaults and limits of escalation (protocol/SPEC.md section 15.2).
const (
	// DefaultReminder is the interval of reminders about an unread urgent
	// message.
	DefaultReminder = 15 * time.Minute
	// MaxReminder bounds the reminder interval (MinWindow is its floor).
	MaxReminder = 24 * time.Hour
	// MaxTeamName bounds the team name that wake-ups carry, in bytes.
	MaxTeamName = 64
)

// Options configure an Escalator. Zero fields mean the defaults.
type Options struct {
	// Team is the queue's name as wake-ups say it ("Pharmacy"). Required.
	Team string
	// Window is the response window of a message that is not urgent.
	// The zero Window means BusinessDays(DefaultBusinessDays).
	Window Window
	// Urgent is the wall-clock response window of an urgent message,
	// MinWindow to MaxUrgentWindow. Zero means DefaultUrgentWindow.
	Urgent time.Duration
	// Reminder is the interval of reminders to the recipients of an
	// urgent message until it is read, MinWindow to MaxReminder. Zero
	// means DefaultReminder.
	Reminder time.Duration
	// EscalationGroup is the group that an overdue conversation's wake-up
	// goes to when no roster is set, or nobody is on call.
	EscalationGroup string
	// Roster, if set, sends an overdue conversation's wake-up to the
	// contact on call at the time it fires.
	Roster *Roster
	// Clock is the time source of Check. Nil means time.Now.
	Clock func() time.Time
}

// Escalator decides, for a team queue, when a conversation is overdue and
// which content-free wake-ups to send. It keeps no state: the caller keeps
// each conversation's Record. It is safe for concurrent use.
type Escalator struct {
	sched    *Schedule
	team     string
	window   Window
	urgent   Window
	reminder time.Duration
	group    string
	roster   *Roster
	clock    func() time.Time
}

// NewEscalator returns the escalator of a queue open during s. Either an
// escalation group or a roster is required.
func NewEscalator(s *Schedule, opts Options) (*Escalator, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: no business hours", ErrPolicy)
	}
	if err := checkLabel("team name", opts.Team); err != nil {
		return nil, err
	}
	if opts.EscalationGroup != "" {
		if err := checkLabel("escalation group", opts.EscalationGroup); err != nil {
			return nil, err
		}
	} else if opts.Roster == nil {
		return nil, fmt.Errorf("%w: neither an escalation group nor an on-call roster", ErrPolicy)
	}
	e := &Escalator{sched: s, team: opts.Team, window: opts.Window, reminder: opts.Reminder,
		group: opts.EscalationGroup, roster: opts.Roster, clock: opts.Clock}
	if e.window == (Window{}) {
		e.window = BusinessDays(DefaultBusinessDays)
	}
	if err := e.window.Validate(); err != nil {
		return nil, err
	}
	u := opts.Urgent
	if u == 0 {
		u = DefaultUrgentWindow
	}
	e.urgent = WallClock(u)
	if err := e.urgent.Validate(); err != nil {
		return nil, err
	}
	if e.reminder == 0 {
		e.reminder = DefaultReminder
	}
	if e.reminder < MinWindow || e.reminder > MaxReminder || e.reminder%time.Minute != 0 {
		return nil, fmt.Errorf("%w: reminder every %v (whole minutes, %v to %v)", ErrWindow, e.reminder, MinWindow, MaxReminder)
	}
	if e.clock == nil {
		e.clock = time.Now
	}
	return e, nil
}

func checkLabel(what, s string) error {
	if s == "" || len(s) > MaxTeamName || !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s must be 1 to %d bytes of UTF-8", ErrPolicy, what, MaxTeamName)
	}
	for _, c := range s {
		if unicode.IsControl(c) || c == '\u2028' || c == '\u2029' {
			return fmt.Errorf("%w: %s has a control character", ErrPolicy, what)
		}
	}
	return nil
}

// Conversation is what the escalator needs of a conversation's state.
// Zero times mean "not yet". A claim, answer or read before Received
// belongs to an earlier message (the conversation was reopened) and does
// not count.
type Conversation struct {
	// Received is when the oldest message the team has not answered
	// reached it.
	Received time.Time
	// Urgent is the message's urgent flag.
	Urgent bool
	// Claimed is when a staff member claimed the conversation.
	Claimed time.Time
	// Answered is when the team first answered.
	Answered time.Time
	// Read is when a recipient first read the message.
	Read time.Time
}

// Record is what has been sent about a conversation's message. The caller
// stores the Record of each Decision once its wake-ups are handed to the
// outbox, and passes it to the next decision: that is what makes a
// window's wake-up fire once. A record of another Received is stale and
// counts as empty.
type Record struct {
	// Received identifies the message the record is about.
	Received time.Time
	// Business and Urgent say that the wake-up of the business or the
	// urgent window was sent.
	Business, Urgent bool
	// Reminders is the number of the last reminder interval in which a
	// reminder was sent (1 for the first, after one interval).
	Reminders int
}

// TargetKind is whom a wake-up goes to.
type TargetKind int

const (
	// TargetGroup is the escalation group, Target.Name.
	TargetGroup TargetKind = iota + 1
	// TargetOnCall is the contact on call by the roster, Target.Name.
	TargetOnCall
	// TargetRecipients are the queue's staff (urgent reminders, and
	// escalations when the roster has a gap and there is no group).
	TargetRecipients
)

// Target is where a wake-up goes.
type Target struct {
	Kind TargetKind
	Name string // group or contact name; "" for TargetRecipients
}

// Reason says why a wake-up is sent, for the content-free figures.
type Reason int

const (
	// Unclaimed: the window passed and nobody claimed the conversation.
	Unclaimed Reason = iota + 1
	// Unanswered: the window passed; it was claimed but not answered.
	Unanswered
	// Unread: an urgent message is not read yet (a reminder).
	Unread
)

func (r Reason) String() string {
	switch r {
	case Unclaimed:
		return "unclaimed"
	case Unanswered:
		return "unanswered"
	case Unread:
		return "unread"
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// WakeUp is a notification to send. Text carries no content of the
// conversation: only the team's name and the window.
type WakeUp struct {
	Target Target
	Reason Reason
	Urgent bool
	Text   string
}

// Decision is the escalator's answer for one conversation at one time.
type Decision struct {
	// Deadline is when the conversation's window ends.
	Deadline time.Time
	// Overdue is true when the deadline has passed and the team has not
	// answered.
	Overdue bool
	// WakeUps are to be sent now, at most one escalation and one reminder.
	WakeUps []WakeUp
	// Next is when to decide again if nothing changes; zero when nothing
	// more is due (answered and read, or escalated and read).
	Next time.Time
	// Record is the record to store once the wake-ups are sent.
	Record Record
}

// Check is Decide at the escalator's clock.
func (e *Escalator) Check(c Conversation, rec Record) (Decision, error) {
	return e.Decide(c, rec, e.clock())
}

// Decide says whether conversation c is overdue at now, which wake-ups to
// send, and when to decide again. rec is the record of the previous
// decision (the zero Record at first).
//
// An unanswered conversation's wake-up fires once its window has passed,
// once per window: to the contact on call at now if the roster names one,
// else the escalation group, else the queue's recipients. An urgent
// message that nobody has read also brings a reminder to the recipients
// after each Reminder interval; when several intervals passed since the
// last decision, one reminder is sent, not one per interval.
func (e *Escalator) Decide(c Conversation, rec Record, now time.Time) (Decision, error) {
	if c.Received.IsZero() {
		return Decision{}, ErrConversation
	}
	if !rec.Received.Equal(c.Received) {
		rec = Record{Received: c.Received}
	}
	since := func(t time.Time) bool { return !t.IsZero() && !t.Before(c.Received) }
	answered := since(c.Answered)
	read := answered || since(c.Read)

	w := e.window
	if c.Urgent {
		w = e.urgent
	}
	deadline, err := e.sched.Deadline(c.Received, w)
	if err != nil {
		return Decision{}, err
	}
	d := Decision{Deadline: deadline}
	if !answered {
		d.Overdue = !now.Before(deadline)
		fired := rec.Business
		if c.Urgent {
			fired = rec.Urgent
		}
		switch {
		case !d.Overdue:
			d.Next = deadline
		case !fired:
			reason := Unclaimed
			if since(c.Claimed) {
				reason = Unanswered
			}
			d.WakeUps = append(d.WakeUps, WakeUp{Target: e.target(now), Reason: reason, Urgent: c.Urgent,
				Text: e.escalationText(c.Urgent, w)})
			if c.Urgent {
				rec.Urgent = true
			} else {
				rec.Business = true
			}
		}
	}
	if c.Urgent && !read {
		slot := 0
		if now.After(c.Received) {
			slot = int(now.Sub(c.Received) / e.reminder)
		}
		if slot >= 1 && slot > rec.Reminders {
			d.WakeUps = append(d.WakeUps, WakeUp{Target: Target{Kind: TargetRecipients}, Reason: Unread, Urgent: true,
				Text: fmt.Sprintf("An urgent message in %s is waiting to be read", e.team)})
			rec.Reminders = slot
		}
		next := c.Received.Add(time.Duration(max(slot, rec.Reminders)+1) * e.reminder)
		if d.Next.IsZero() || next.Before(d.Next) {
			d.Next = next.In(e.sched.loc)
		}
	}
	d.Record = rec
	return d, nil
}

func (e *Escalator) target(now time.Time) Target {
	if name, ok := e.roster.OnCall(now); ok {
		return Target{Kind: TargetOnCall, Name: name}
	}
	if e.group != "" {
		return Target{Kind: TargetGroup, Name: e.group}
	}
	return Target{Kind: TargetRecipients}
}

func (e *Escalator) escalationText(urgent bool, w Window) string {
	if urgent {
		return fmt.Sprintf("An urgent message in %s has waited %s", e.team, w)
	}
	return fmt.Sprintf("A message in %s has waited %s", e.team, w)
}
