package hours

import (
	"errors"
	"fmt"
)

var (
	// ErrSchedule reports business hours that cannot be used: an unknown
	// time zone, no business day, or an opening not before the closing.
	ErrSchedule = errors.New("hours: invalid business hours")

	// ErrWindow reports a response window outside its limits
	// (MinWindow, MaxUrgentWindow, MaxBusinessDays).
	ErrWindow = errors.New("hours: invalid response window")

	// ErrHolidays reports a holiday calendar file that does not parse or
	// exceeds its limits. A *LineError carries the line.
	ErrHolidays = errors.New("hours: invalid holiday calendar")

	// ErrRoster reports an on-call roster file that does not parse,
	// exceeds its limits or has overlapping shifts. A *LineError carries
	// the line.
	ErrRoster = errors.New("hours: invalid on-call roster")

	// ErrNoBusinessTime reports a deadline that would lie more than
	// MaxSearchDays after the message was received, because the holiday
	// calendar closes (almost) every business day.
	ErrNoBusinessTime = errors.New("hours: no business time within the search limit")

	// ErrConversation reports a conversation without a received time.
	ErrConversation = errors.New("hours: conversation has no received time")

	// ErrPolicy reports an escalation policy that cannot be used: no team
	// name, a name with control characters, or neither an escalation
	// group nor an on-call roster.
	ErrPolicy = errors.New("hours: invalid escalation policy")
)

// LineError is a parse error of a holiday calendar or on-call roster file,
// naming its line (counted from 1). Err is ErrHolidays or ErrRoster, so
// errors.Is works on it. Msg never repeats a holiday's or a contact's
// name: a roster names people, and errors end up in logs.
type LineError struct {
	Err  error
	Line int
	Msg  string
}

func (e *LineError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%v: %s", e.Err, e.Msg)
	}
	return fmt.Sprintf("%v: line %d: %s", e.Err, e.Line, e.Msg)
}

func (e *LineError) Unwrap() error { return e.Err }
