package hours

import (
	"fmt"
	"time"
)

// Limits and defaults of response windows (protocol/SPEC.md section 15.2).
const (
	// DefaultBusinessDays is a team queue's response window.
	DefaultBusinessDays = 3
	// DefaultUrgentWindow is the response window of an urgent message.
	DefaultUrgentWindow = 2 * time.Hour
	// MinWindow is the shortest window of either kind; windows are whole
	// minutes.
	MinWindow = time.Minute
	// MaxBusinessDays bounds a business-day window.
	MaxBusinessDays = 60
	// MaxBusinessTime bounds a window given in business time.
	MaxBusinessTime = MaxBusinessDays * 24 * time.Hour
	// MaxUrgentWindow bounds a wall-clock window.
	MaxUrgentWindow = 7 * 24 * time.Hour
)

// Window is a response window: either business time (counted only while
// the team is open) or wall-clock time (counted at all hours, for urgent
// messages). The zero Window is invalid; make one with BusinessDays,
// BusinessTime or WallClock.
type Window struct {
	wall   bool
	days   int           // business days, if not zero
	length time.Duration // business time, or elapsed time if wall
}

// BusinessDays is a window of n business days: n times the schedule's
// DayLength of business time (3 days of 08:00–17:00 are 27 business hours).
func BusinessDays(n int) Window { return Window{days: n} }

// BusinessTime is a window of d business time, for example 4 business hours.
func BusinessTime(d time.Duration) Window { return Window{length: d} }

// WallClock is a window of d elapsed time at all hours, nights, weekends
// and holidays included: the window of urgent messages.
func WallClock(d time.Duration) Window { return Window{wall: true, length: d} }

// Urgent reports whether the window counts wall-clock time.
func (w Window) Urgent() bool { return w.wall }

// Validate checks the window against its limits.
func (w Window) Validate() error {
	switch {
	case w.days != 0:
		if w.days < 1 || w.days > MaxBusinessDays {
			return fmt.Errorf("%w: %d business days (1 to %d)", ErrWindow, w.days, MaxBusinessDays)
		}
		return nil
	case w.wall && (w.length < MinWindow || w.length > MaxUrgentWindow):
		return fmt.Errorf("%w: %v (%v to %v)", ErrWindow, w.length, MinWindow, MaxUrgentWindow)
	case !w.wall && (w.length < MinWindow || w.length > MaxBusinessTime):
		return fmt.Errorf("%w: %v of business time (%v to %v)", ErrWindow, w.length, MinWindow, MaxBusinessTime)
	case w.length%time.Minute != 0:
		return fmt.Errorf("%w: %v is not whole minutes", ErrWindow, w.length)
	}
	return nil
}

// String is the window as the wake-up says it: "3 business days",
// "4 business hours", "90 minutes of business time", "2 hours",
// "1 hour 30 minutes".
func (w Window) String() string {
	switch {
	case w.days == 1:
		return "1 business day"
	case w.days != 0:
		return fmt.Sprintf("%d business days", w.days)
	case w.wall:
		return spell(w.length)
	case w.length%time.Hour == 0 && w.length > 0:
		h := int(w.length / time.Hour)
		if h == 1 {
			return "1 business hour"
		}
		return fmt.Sprintf("%d business hours", h)
	default:
		return spell(w.length) + " of business time"
	}
}

// spell writes d (whole minutes) as hours and minutes in words.
func spell(d time.Duration) string {
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	unit := func(n int, one, many string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %s", n, many)
	}
	switch {
	case h == 0:
		return unit(m, "minute", "minutes")
	case m == 0:
		return unit(h, "hour", "hours")
	default:
		return unit(h, "hour", "hours") + " " + unit(m, "minute", "minutes")
	}
}

// Deadline is when a message received at received has waited the window:
// for a wall-clock window, received plus its length in real time; for a
// business window, AddBusiness of its business time. The result is in the
// team's zone.
func (s *Schedule) Deadline(received time.Time, w Window) (time.Time, error) {
	if err := w.Validate(); err != nil {
		return time.Time{}, err
	}
	switch {
	case w.wall:
		return received.Add(w.length).In(s.loc), nil
	case w.days != 0:
		return s.AddBusiness(received, time.Duration(w.days)*s.DayLength())
	default:
		return s.AddBusiness(received, w.length)
	}
}
