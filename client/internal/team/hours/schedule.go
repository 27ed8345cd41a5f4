package hours

import (
	"fmt"
	"time"
	_ "time/tzdata" // zones must load on a machine without a zoneinfo database
)

// Defaults of a team's business hours (protocol/SPEC.md section 15.2).
const (
	DefaultOpen  = "08:00"
	DefaultClose = "17:00"
)

// MaxSearchDays bounds how far past a message a deadline or an opening is
// searched for, so that a calendar listing every day as a holiday ends in
// ErrNoBusinessTime rather than a long loop.
const MaxSearchDays = 3660

// DefaultDays are the business days when ScheduleOptions.Days is nil.
var DefaultDays = []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}

// ScheduleOptions are a team's business hours. The zero value and nil mean
// the defaults: Monday to Friday, 08:00 to 17:00, no holidays.
type ScheduleOptions struct {
	// Days are the business days. Nil means DefaultDays.
	Days []time.Weekday
	// Open is the opening time "HH:MM" on the team's clocks. "" means
	// DefaultOpen.
	Open string
	// Close is the closing time "HH:MM", after Open; "24:00" is midnight
	// at the end of the day. "" means DefaultClose.
	Close string
	// Holidays are days closed all day. Nil means none.
	Holidays *Holidays
}

// Schedule is a team's business hours in its time zone. It is immutable
// and safe for concurrent use.
type Schedule struct {
	loc         *time.Location
	days        [7]bool
	open, close int // minutes after local midnight
	holidays    *Holidays
}

// NewSchedule returns the business hours opts describes in the IANA time
// zone zone (for example "Europe/Berlin"). The zone is required: a team's
// hours are its local hours, whatever the zone of the machine.
func NewSchedule(zone string, opts *ScheduleOptions) (*Schedule, error) {
	if zone == "" {
		return nil, fmt.Errorf("%w: no time zone", ErrSchedule)
	}
	if zone == "Local" {
		// The machine's zone is not the team's: an agent moved to a
		// server in UTC would shift every deadline.
		return nil, fmt.Errorf("%w: \"Local\" is not a team's time zone", ErrSchedule)
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, fmt.Errorf("%w: unknown time zone %q", ErrSchedule, zone)
	}
	if opts == nil {
		opts = &ScheduleOptions{}
	}
	s := &Schedule{loc: loc, holidays: opts.Holidays}
	days := opts.Days
	if days == nil {
		days = DefaultDays
	}
	for _, d := range days {
		if d < time.Sunday || d > time.Saturday {
			return nil, fmt.Errorf("%w: weekday %d", ErrSchedule, int(d))
		}
		s.days[d] = true
	}
	if len(days) == 0 {
		return nil, fmt.Errorf("%w: no business day", ErrSchedule)
	}
	open, close := opts.Open, opts.Close
	if open == "" {
		open = DefaultOpen
	}
	if close == "" {
		close = DefaultClose
	}
	var ok bool
	if s.open, ok = parseClock(open); !ok || s.open == 24*60 {
		return nil, fmt.Errorf("%w: opening %q is not HH:MM", ErrSchedule, open)
	}
	if s.close, ok = parseClock(close); !ok {
		return nil, fmt.Errorf("%w: closing %q is not HH:MM", ErrSchedule, close)
	}
	if s.close <= s.open {
		return nil, fmt.Errorf("%w: closing %s is not after opening %s", ErrSchedule, close, open)
	}
	return s, nil
}

// Location is the team's time zone.
func (s *Schedule) Location() *time.Location { return s.loc }

// DayLength is the length of a business day on the clock (closing minus
// opening): 9 hours by default. A business-day window is this many times
// its number of days, counted in real time while open (see AddBusiness).
func (s *Schedule) DayLength() time.Duration {
	return time.Duration(s.close-s.open) * time.Minute
}

// BusinessDay reports whether the day of t (in the team's zone) opens:
// one of the business days and not a holiday.
func (s *Schedule) BusinessDay(t time.Time) bool {
	return s.businessDay(dateOf(t.In(s.loc)))
}

func (s *Schedule) businessDay(d date) bool {
	return s.days[d.weekday()] && !s.holidays.has(d)
}

// hoursOf is the opening and closing instants of business day d. An
// opening or closing time that a DST change skips on that day is the
// moment of the change, and one that occurs twice is its first occurrence,
// so a day's business time is the real time between the two.
func (s *Schedule) hoursOf(d date) (open, close time.Time) {
	open, _ = instant(d, s.open, s.loc)
	close, _ = instant(d, s.close, s.loc)
	return open, close
}

// IsOpen reports whether t falls within business hours: opening included,
// closing excluded.
func (s *Schedule) IsOpen(t time.Time) bool {
	d := dateOf(t.In(s.loc))
	if !s.businessDay(d) {
		return false
	}
	open, close := s.hoursOf(d)
	return !t.Before(open) && t.Before(close)
}

// NextOpen is t if business hours are open at t, else the next opening
// after t. It fails with ErrNoBusinessTime if there is none within
// MaxSearchDays.
func (s *Schedule) NextOpen(t time.Time) (time.Time, error) {
	return s.AddBusiness(t, 0)
}

// AddBusiness is the moment at which d of business time has passed since
// start: time is counted only while open, in real elapsed time (a DST
// change inside business hours lengthens or shortens that day's count),
// skipping closed days and holidays. A start outside business hours counts
// from the next opening. A result that falls exactly on a closing is that
// closing, not the next opening. AddBusiness(start, 0) is the next opening
// at or after start.
func (s *Schedule) AddBusiness(start time.Time, d time.Duration) (time.Time, error) {
	if d < 0 {
		return time.Time{}, fmt.Errorf("%w: negative business time", ErrWindow)
	}
	day := dateOf(start.In(s.loc))
	remaining := d
	for i := 0; i <= MaxSearchDays; i++ {
		if s.businessDay(day) {
			open, close := s.hoursOf(day)
			from := open
			if start.After(from) {
				from = start
			}
			if from.Before(close) {
				avail := close.Sub(from)
				if remaining < avail || (remaining == avail && remaining > 0) {
					return from.Add(remaining).In(s.loc), nil
				}
				remaining -= avail
			}
		}
		day = day.next()
	}
	return time.Time{}, ErrNoBusinessTime
}

// BusinessBetween is the business time from a to b: the real time within
// business hours in [a, b), zero if b is not after a. It is the inverse of
// AddBusiness (BusinessBetween(start, AddBusiness(start, d)) == d), so an
// agent can say how long a message has waited in business time. Spans of
// more than MaxSearchDays days are ErrNoBusinessTime.
func (s *Schedule) BusinessBetween(a, b time.Time) (time.Duration, error) {
	if !b.After(a) {
		return 0, nil
	}
	day, last := dateOf(a.In(s.loc)), dateOf(b.In(s.loc))
	var sum time.Duration
	for i := 0; i <= MaxSearchDays; i++ {
		if s.businessDay(day) {
			open, close := s.hoursOf(day)
			if a.After(open) {
				open = a
			}
			if b.Before(close) {
				close = b
			}
			if close.After(open) {
				sum += close.Sub(open)
			}
		}
		if day == last {
			return sum, nil
		}
		day = day.next()
	}
	return 0, ErrNoBusinessTime
}
