package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/postern/postern/client/internal/team/hours"
	"github.com/postern/postern/client/internal/team/stats"
)

// Defaults of Options.
const (
	// DefaultRetry is how long the loop waits after a failed sweep.
	DefaultRetry = 30 * time.Second
	// DefaultMaxWait is the longest the loop sleeps without listing the
	// queue again.
	DefaultMaxWait = 5 * time.Minute
	// MaxItems bounds the conversations one sweep takes from the queue
	// (the claim space's register limit, SPEC section 10).
	MaxItems = 100_000
)

var (
	// ErrOptions: New was given an incomplete or invalid configuration.
	ErrOptions = errors.New("agent: invalid options")
	// ErrTooMany: the queue listed more than MaxItems conversations.
	ErrTooMany = errors.New("agent: the queue listed more conversations than an agent handles")
)

// Item is an open conversation of the team's queue as the agent sees it:
// its opaque token and what the escalator needs of its state.
type Item struct {
	Token        stats.Token
	Conversation hours.Conversation
}

// Queue is the team queue the agent watches and writes to.
type Queue interface {
	// Open lists the conversations that wait for the team: opened or
	// reopened, and neither resolved nor archived.
	Open(ctx context.Context) ([]Item, error)
	// WakeUp sends a content-free wake-up to its target. It returns nil
	// only once the wake-up is durable in the outbox.
	WakeUp(ctx context.Context, w hours.WakeUp) error
}

// Records keeps each conversation's escalation record (hours.Record)
// across restarts.
type Records interface {
	// Record returns the record of conversation t, the zero Record if
	// there is none.
	Record(t stats.Token) (hours.Record, error)
	// SetRecord stores the record of conversation t durably.
	SetRecord(t stats.Token, r hours.Record) error
	// Prune forgets the records of every conversation not in open.
	Prune(open map[stats.Token]bool) error
}

// Options configure a Runner.
type Options struct {
	// Escalator decides the windows and wake-ups. Required.
	Escalator *hours.Escalator
	// Queue is the team's queue. Required.
	Queue Queue
	// Records keeps escalation records. Required.
	Records Records
	// Events, if set, is given an Escalated event of queue QueueID for
	// every wake-up sent, to count and keep (an error is logged: the
	// wake-up went out, only the figure is missing).
	Events  func(stats.Event) error
	QueueID stats.QueueID
	// Clock is the time of a sweep. Nil means time.Now.
	Clock func() time.Time
	// After returns a channel that receives once d has passed (a fake
	// clock's timer in tests). Nil means time.After.
	After func(d time.Duration) <-chan time.Time
	// Retry is the wait after a failed sweep; zero means DefaultRetry.
	Retry time.Duration
	// MaxWait is the longest sleep between two sweeps; zero means
	// DefaultMaxWait.
	MaxWait time.Duration
	// Logger receives content-free lines; nil means slog.Default().
	Logger *slog.Logger
}

// Runner is the agent's loop. Create it with New; Run it once.
type Runner struct {
	esc     *hours.Escalator
	q       Queue
	rec     Records
	events  func(stats.Event) error
	queueID stats.QueueID
	clock   func() time.Time
	after   func(time.Duration) <-chan time.Time
	retry   time.Duration
	maxWait time.Duration
	log     *slog.Logger
	poke    chan struct{}
}

// New returns a Runner for opts.
func New(opts Options) (*Runner, error) {
	switch {
	case opts.Escalator == nil:
		return nil, fmt.Errorf("%w: no escalator", ErrOptions)
	case opts.Queue == nil:
		return nil, fmt.Errorf("%w: no queue", ErrOptions)
	case opts.Records == nil:
		return nil, fmt.Errorf("%w: no records", ErrOptions)
	case opts.Retry < 0 || opts.MaxWait < 0:
		return nil, fmt.Errorf("%w: negative wait", ErrOptions)
	}
	r := &Runner{esc: opts.Escalator, q: opts.Queue, rec: opts.Records, events: opts.Events,
		queueID: opts.QueueID, clock: opts.Clock, after: opts.After, retry: opts.Retry,
		maxWait: opts.MaxWait, log: opts.Logger, poke: make(chan struct{}, 1)}
	if r.clock == nil {
		r.clock = time.Now
	}
	if r.after == nil {
		r.after = time.After
	}
	if r.retry == 0 {
		r.retry = DefaultRetry
	}
	if r.maxWait == 0 {
		r.maxWait = DefaultMaxWait
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	return r, nil
}

// Poke makes a running loop sweep at once: the queue changed (a message
// arrived, a conversation was claimed, answered, read or resolved). It
// never blocks; pokes while a sweep is due are merged.
func (r *Runner) Poke() {
	select {
	case r.poke <- struct{}{}:
	default:
	}
}

// Sweep decides every open conversation at the clock's time, sends the
// wake-ups that are due, records what was sent, and returns when the next
// decision is needed (zero if nothing is pending). Errors of single
// conversations do not stop the others; they are joined in the result,
// and a conversation whose wake-up failed is decided again at the next
// sweep.
func (r *Runner) Sweep(ctx context.Context) (next time.Time, err error) {
	items, err := r.q.Open(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("agent: listing the queue: %w", err)
	}
	if len(items) > MaxItems {
		return time.Time{}, fmt.Errorf("%w (%d, at most %d)", ErrTooMany, len(items), MaxItems)
	}
	now := r.clock()
	open := make(map[stats.Token]bool, len(items))
	var errs []error
	sent := 0
	for _, it := range items {
		open[it.Token] = true
		if err := ctx.Err(); err != nil {
			return next, err
		}
		n, w, err := r.decide(ctx, it, now)
		sent += w
		if err != nil {
			errs = append(errs, err)
			// Decided again after Retry, not at its own next time.
			continue
		}
		if !n.IsZero() && (next.IsZero() || n.Before(next)) {
			next = n
		}
	}
	if err := r.rec.Prune(open); err != nil {
		errs = append(errs, fmt.Errorf("agent: pruning records: %w", err))
	}
	if sent > 0 || len(errs) > 0 {
		r.log.Info("agent: swept the queue", "open", len(items), "wake-ups", sent, "failed", len(errs))
	}
	return next, errors.Join(errs...)
}

// decide handles one conversation: it returns the time of its next
// decision and how many wake-ups it sent.
func (r *Runner) decide(ctx context.Context, it Item, now time.Time) (time.Time, int, error) {
	held, err := r.rec.Record(it.Token)
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("agent: reading a record: %w", err)
	}
	d, err := r.esc.Decide(it.Conversation, held, now)
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("agent: deciding a conversation: %w", err)
	}
	// What is stored is what was sent: start from the held record (reset
	// when it is about an earlier message, as Decide does) and take from
	// the decision's record only the fields of wake-ups that went out.
	rec := held
	if !rec.Received.Equal(it.Conversation.Received) {
		rec = hours.Record{Received: it.Conversation.Received}
	}
	sent := 0
	var sendErr error
	for _, w := range d.WakeUps {
		if err := r.q.WakeUp(ctx, w); err != nil {
			sendErr = fmt.Errorf("agent: sending a wake-up: %w", err)
			break
		}
		sent++
		if w.Reason == hours.Unread {
			rec.Reminders = d.Record.Reminders
		} else {
			rec.Business, rec.Urgent = d.Record.Business, d.Record.Urgent
		}
		r.count(it.Token, w, now)
	}
	if rec != held {
		if err := r.rec.SetRecord(it.Token, rec); err != nil {
			return time.Time{}, sent, errors.Join(sendErr, fmt.Errorf("agent: storing a record: %w", err))
		}
	}
	if sendErr != nil {
		return time.Time{}, sent, sendErr
	}
	return d.Next, sent, nil
}

// count adds an Escalated event for wake-up w to the figures.
func (r *Runner) count(t stats.Token, w hours.WakeUp, now time.Time) {
	if r.events == nil {
		return
	}
	typ, ok := stats.EscalationOf(w.Reason)
	if !ok {
		return
	}
	e, err := stats.NewEvent(stats.Escalated, now, r.queueID, t)
	if err == nil {
		e.Escalation = typ
		err = r.events(e)
	}
	if err != nil {
		// The wake-up went out; only the figure is missing.
		r.log.Warn("agent: counting an escalation", "err", err)
	}
}

// Run sweeps until ctx is done: at once, then at the next decision time,
// when poked, after Retry following an error, and at least every MaxWait.
// It returns ctx's error.
func (r *Runner) Run(ctx context.Context) error {
	for {
		next, err := r.Sweep(ctx)
		wait := r.maxWait
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.log.Warn("agent: sweep failed; trying again", "err", err, "after", r.retry)
			wait = min(wait, r.retry)
		}
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(r.clock()), 0))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.poke:
		case <-r.after(wait):
		}
	}
}
