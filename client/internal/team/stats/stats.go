package stats

import (
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits of a Stats (protocol/SPEC.md section 15.8). An event beyond one
// is refused with ErrFull and changes nothing.
const (
	// MaxEvents is the number of distinct events a Stats counts. The
	// agent starts a new Stats from the events of its retention period
	// before reaching it.
	MaxEvents = 1 << 20
	// MaxQueues is the number of queues a Stats counts.
	MaxQueues = 256
	// MaxConversationEvents is the number of lifecycle events (arrived,
	// reopened, claimed, first response, resolved, archived) kept for
	// one conversation.
	MaxConversationEvents = 1024
	// MaxQueueName bounds a queue's name, in bytes.
	MaxQueueName = 64
)

// bucketsMillis are the upper bounds of the time-to-first-response
// histogram's buckets, in milliseconds: 1, 5, 15 and 30 minutes, 1, 2, 4
// and 8 hours, 1, 2, 3, 5 and 7 days (SPEC 15.8). A bucket counts the
// responses at most its bound after the conversation was opened.
var bucketsMillis = [...]int64{
	60_000, 300_000, 900_000, 1_800_000,
	3_600_000, 7_200_000, 14_400_000, 28_800_000,
	86_400_000, 172_800_000, 259_200_000, 432_000_000, 604_800_000,
}

// Buckets returns the upper bounds of the time-to-first-response
// histogram's buckets, in seconds, without the +Inf bucket.
func Buckets() []float64 {
	out := make([]float64, len(bucketsMillis))
	for i, b := range bucketsMillis {
		out[i] = float64(b) / 1000
	}
	return out
}

// Options configure a Stats. The zero value means the defaults.
type Options struct {
	// Clock is the time of Snapshot (the age of the oldest unclaimed
	// message is measured at it). Nil means time.Now.
	Clock func() time.Time
}

// Stats counts a team's content-free events into its workflow figures.
// Counting is idempotent (an event whose ID was counted changes nothing)
// and does not depend on the order events arrive in (SPEC 15.8 "Counting").
// The zero value is not usable; call New. It is safe for concurrent use.
type Stats struct {
	clock func() time.Time

	mu     sync.Mutex
	seen   map[EventID]Event
	queues map[QueueID]*queue
	names  map[string]QueueID
}

// queue holds one queue's figures.
type queue struct {
	name string // "" until named

	messages, reopened, failures, exports uint64
	escalations                           [len(escalationNames)]uint64

	// hist counts first responses per bucket (not cumulative), the last
	// being +Inf; sum is their total in milliseconds.
	hist  [len(bucketsMillis) + 1]uint64
	sum   int64
	convs map[Token]*conv
}

// mark is one lifecycle event of a conversation.
type mark struct {
	ms  int64
	typ EventType
	id  EventID
}

// lifecycleRank orders lifecycle events of the same millisecond in the
// order they happen in a conversation.
var lifecycleRank = [...]uint8{
	MessageArrived: 1, Reopened: 2, Claimed: 3, FirstResponse: 4, Resolved: 5, Archived: 6,
}

func isLifecycle(t EventType) bool { return int(t) < len(lifecycleRank) && lifecycleRank[t] != 0 }

func (a mark) compare(b mark) int {
	switch {
	case a.ms != b.ms:
		if a.ms < b.ms {
			return -1
		}
		return 1
	case a.typ != b.typ:
		return int(lifecycleRank[a.typ]) - int(lifecycleRank[b.typ])
	}
	return slices.Compare(a.id[:], b.id[:])
}

// conv is one conversation: its lifecycle events in order, and what they
// give.
type conv struct {
	marks []mark
	open  bool  // an arrival or reopening not followed by a closing
	taken bool  // open, and claimed or answered since it opened
	start int64 // when it opened (ms), if open
	// obs are the times to first response (ms), one per opening answered.
	obs []int64
}

// replay derives the conversation's state from its events in order.
func (c *conv) replay() {
	c.open, c.taken, c.start, c.obs = false, false, 0, c.obs[:0]
	answered := false
	for _, m := range c.marks {
		switch m.typ {
		case MessageArrived, Reopened:
			if !c.open {
				c.open, c.taken, c.start, answered = true, false, m.ms, false
			}
		case Claimed:
			if c.open {
				c.taken = true
			}
		case FirstResponse:
			if c.open && !answered {
				answered, c.taken = true, true
				c.obs = append(c.obs, m.ms-c.start)
			}
		case Resolved, Archived:
			c.open = false
		}
	}
}

// New returns an empty Stats.
func New(opts *Options) *Stats {
	s := &Stats{clock: time.Now, seen: map[EventID]Event{}, queues: map[QueueID]*queue{}, names: map[string]QueueID{}}
	if opts != nil && opts.Clock != nil {
		s.clock = opts.Clock
	}
	return s
}

// NameQueue gives queue q the name its figures are labelled with (the
// team's name, as its wake-ups say it). A queue without a name is
// labelled with its ID in hex. Names are unique.
func (s *Stats) NameQueue(q QueueID, name string) error {
	if err := checkQueueName(name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if other, ok := s.names[name]; ok && other != q {
		return fmt.Errorf("%w: the name of another queue", ErrQueueName)
	}
	qu, err := s.queue(q)
	if err != nil {
		return err
	}
	if qu.name != "" {
		delete(s.names, qu.name)
	}
	qu.name = name
	s.names[name] = q
	return nil
}

func checkQueueName(name string) error {
	if name == "" || len(name) > MaxQueueName || !utf8.ValidString(name) {
		return fmt.Errorf("%w: 1 to %d bytes of UTF-8", ErrQueueName, MaxQueueName)
	}
	for _, c := range name {
		if unicode.IsControl(c) || c == '\u2028' || c == '\u2029' {
			return fmt.Errorf("%w: a control character", ErrQueueName)
		}
	}
	if isHexLabel(name) {
		return fmt.Errorf("%w: 32 hex digits (the label of an unnamed queue)", ErrQueueName)
	}
	return nil
}

func isHexLabel(name string) bool {
	if len(name) != 2*QueueIDSize {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// queue returns q's figures, creating them. s.mu is held.
func (s *Stats) queue(q QueueID) (*queue, error) {
	if qu, ok := s.queues[q]; ok {
		return qu, nil
	}
	if len(s.queues) >= MaxQueues {
		return nil, fmt.Errorf("%w: %d queues", ErrFull, MaxQueues)
	}
	qu := &queue{convs: map[Token]*conv{}}
	s.queues[q] = qu
	return qu, nil
}

// Add counts event e. It reports whether e was new: an event whose ID was
// already counted, with the same contents, changes nothing and returns
// false. An invalid event (ErrEvent), an ID counted with other contents
// (ErrConflict) or an event beyond a limit (ErrFull) is refused and
// changes nothing.
func (s *Stats) Add(e Event) (bool, error) {
	if err := e.Validate(); err != nil {
		return false, err
	}
	ms, _ := millis(e.Time)
	e.Time = time.UnixMilli(ms).UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.seen[e.ID]; ok {
		if !old.Time.Equal(e.Time) || old.Type != e.Type || old.Queue != e.Queue ||
			old.Conversation != e.Conversation || old.Escalation != e.Escalation {
			return false, ErrConflict
		}
		return false, nil
	}
	if len(s.seen) >= MaxEvents {
		return false, fmt.Errorf("%w: %d events", ErrFull, MaxEvents)
	}
	qu, err := s.queue(e.Queue)
	if err != nil {
		return false, err
	}
	if isLifecycle(e.Type) {
		c := qu.convs[e.Conversation]
		if c == nil {
			c = &conv{}
		} else if len(c.marks) >= MaxConversationEvents {
			return false, fmt.Errorf("%w: %d events of one conversation", ErrFull, MaxConversationEvents)
		}
		qu.convs[e.Conversation] = c
		m := mark{ms: ms, typ: e.Type, id: e.ID}
		i := sort.Search(len(c.marks), func(i int) bool { return c.marks[i].compare(m) > 0 })
		c.marks = slices.Insert(c.marks, i, m)
		qu.observe(c.obs, -1)
		c.replay()
		qu.observe(c.obs, +1)
	}
	switch e.Type {
	case MessageArrived:
		qu.messages++
	case Reopened:
		qu.reopened++
	case Escalated:
		qu.escalations[e.Escalation]++
	case DeliveryFailed:
		qu.failures++
	case ExportMade:
		qu.exports++
	}
	s.seen[e.ID] = e
	return true, nil
}

// observe adds (sign +1) or takes back (-1) first-response times.
func (qu *queue) observe(obs []int64, sign int) {
	for _, d := range obs {
		i := sort.Search(len(bucketsMillis), func(i int) bool { return d <= bucketsMillis[i] })
		if sign > 0 {
			qu.hist[i]++
			qu.sum += d
		} else {
			qu.hist[i]--
			qu.sum -= d
		}
	}
}

// Len returns the number of distinct events counted.
func (s *Stats) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}
