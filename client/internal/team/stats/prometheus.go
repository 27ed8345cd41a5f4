package stats

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// ContentType is the HTTP Content-Type of WritePrometheus's output: the
// Prometheus text exposition format 0.0.4.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// MetricPrefix starts every metric name.
const MetricPrefix = "postern_team_"

// family is one metric family of the exposition, in output order.
type family struct {
	name, typ, help string
}

var families = []family{
	{MetricPrefix + "messages_total", "counter", "Messages that reached the queue."},
	{MetricPrefix + "backlog", "gauge", "Open conversations: arrived or reopened, not resolved or archived since."},
	{MetricPrefix + "unclaimed", "gauge", "Open conversations that nobody claimed or answered since they opened."},
	{MetricPrefix + "oldest_unclaimed_seconds", "gauge", "How long the oldest unclaimed conversation has waited since it opened (0 if none)."},
	{MetricPrefix + "first_response_seconds", "histogram", "Time from a conversation's opening to the team's first response."},
	{MetricPrefix + "reopened_total", "counter", "Conversations reopened after being resolved or archived."},
	{MetricPrefix + "escalations_total", "counter", "Content-free wake-ups sent about waiting conversations, by type."},
	{MetricPrefix + "delivery_failures_total", "counter", "Messages of the team that could not be delivered."},
	{MetricPrefix + "exports_total", "counter", "Exports for the record."},
}

// WritePrometheus writes the figures in the Prometheus text exposition
// format 0.0.4 (SPEC 15.8): every family with its HELP and TYPE lines, even
// without samples; one sample per queue (per queue and type for
// escalations), queues in the order of s.Queues; no timestamps.
func (s Snapshot) WritePrometheus(w io.Writer) error {
	bw := bufio.NewWriter(w)
	buckets := make([]string, len(s.Buckets))
	for i, b := range s.Buckets {
		buckets[i] = formatValue(b)
	}
	for _, f := range families {
		bw.WriteString("# HELP " + f.name + " " + escapeHelp(f.help) + "\n")
		bw.WriteString("# TYPE " + f.name + " " + f.typ + "\n")
		for _, q := range s.Queues {
			ql := `queue="` + escapeLabel(q.Queue) + `"`
			sample := func(suffix, labels, value string) {
				bw.WriteString(f.name + suffix + "{" + labels + "} " + value + "\n")
			}
			u := func(v uint64) string { return strconv.FormatUint(v, 10) }
			switch f.name {
			case MetricPrefix + "messages_total":
				sample("", ql, u(q.NewMessages))
			case MetricPrefix + "backlog":
				sample("", ql, u(q.Backlog))
			case MetricPrefix + "unclaimed":
				sample("", ql, u(q.Unclaimed))
			case MetricPrefix + "oldest_unclaimed_seconds":
				sample("", ql, formatValue(q.OldestUnclaimedSeconds))
			case MetricPrefix + "first_response_seconds":
				h := q.FirstResponse
				for i, le := range buckets {
					var n uint64
					if i < len(h.Cumulative) {
						n = h.Cumulative[i]
					}
					sample("_bucket", ql+`,le="`+le+`"`, u(n))
				}
				sample("_bucket", ql+`,le="+Inf"`, u(h.Count))
				sample("_sum", ql, formatValue(h.SumSeconds))
				sample("_count", ql, u(h.Count))
			case MetricPrefix + "reopened_total":
				sample("", ql, u(q.Reopened))
			case MetricPrefix + "escalations_total":
				sample("", ql+`,type="unclaimed"`, u(q.Escalations.Unclaimed))
				sample("", ql+`,type="unanswered"`, u(q.Escalations.Unanswered))
				sample("", ql+`,type="urgent_reminder"`, u(q.Escalations.UrgentReminder))
			case MetricPrefix + "delivery_failures_total":
				sample("", ql, u(q.DeliveryFailures))
			case MetricPrefix + "exports_total":
				sample("", ql, u(q.Exports))
			}
		}
	}
	return bw.Flush()
}

// formatValue writes a finite value as a decimal without exponent, the
// shortest that reads back as v.
func formatValue(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// escapeHelp escapes a HELP text: backslash and line feed.
func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

// escapeLabel escapes a label value: backslash, double quote and line
// feed. Queue names are UTF-8 without control characters, so nothing else
// needs escaping.
func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}
