package agent

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/client/internal/team/stats"
)

func TestHandler(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	st := stats.New(&stats.Options{Clock: func() time.Time { return now }})
	q := stats.QueueID{1}
	if err := st.NameQueue(q, "Pharmacy"); err != nil {
		t.Fatal(err)
	}
	e, err := stats.NewEvent(stats.MessageArrived, now.Add(-time.Hour), q, stats.Token{1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Add(e); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(func() (stats.Snapshot, error) { return st.Snapshot(), nil }))
	defer srv.Close()

	res, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, res)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/plain; version=0.0.4; charset=utf-8" {
		t.Fatalf("/metrics: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`postern_team_messages_total{queue="Pharmacy"} 1`,
		`postern_team_oldest_unclaimed_seconds{queue="Pharmacy"} 3600`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}

	res, err = http.Get(srv.URL + "/stats.json")
	if err != nil {
		t.Fatal(err)
	}
	var snap struct {
		Queues []struct {
			Queue       string `json:"queue"`
			NewMessages int    `json:"new_messages"`
		} `json:"queues"`
	}
	if err := json.Unmarshal([]byte(readAll(t, res)), &snap); err != nil || len(snap.Queues) != 1 ||
		snap.Queues[0].Queue != "Pharmacy" || snap.Queues[0].NewMessages != 1 {
		t.Fatalf("/stats.json: %v %+v", err, snap)
	}

	res, err = http.Post(srv.URL+"/metrics", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /metrics: %d; want 405", res.StatusCode)
	}
	res, err = http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /: %d; want 404", res.StatusCode)
	}
}

func readAll(t *testing.T, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := res.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}
