package agent

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/postern/postern/client/internal/team/stats"
)

// Handler serves the team's workflow figures that figures returns, taken
// afresh at each request: GET /metrics in the
// Prometheus text format 0.0.4, GET /stats.json as the JSON document of
// `postern team stats NAME --json`, and GET /healthz. Figures carry no
// content, names or tokens (SPEC 15.8), so the endpoint needs no
// authentication; bind it to loopback or a monitoring network all the
// same, as the relay's metrics are.
func Handler(figures func() (stats.Snapshot, error)) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		snap, err := figures()
		var b bytes.Buffer
		if err == nil {
			err = snap.WritePrometheus(&b)
		}
		if err != nil {
			http.Error(w, "the figures could not be written", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Write(b.Bytes())
	})
	mux.HandleFunc("GET /stats.json", func(w http.ResponseWriter, _ *http.Request) {
		snap, err := figures()
		var b []byte
		if err == nil {
			b, err = json.Marshal(snap)
		}
		if err != nil {
			http.Error(w, "the figures could not be written", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(append(b, '\n'))
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	return mux
}
