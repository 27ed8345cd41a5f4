package ui

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/postern/postern/client"
)

// For the medical record (client/patient.go, client/export.go): the
// message screen files a conversation under a patient and downloads the
// signed FHIR export of the message or of the whole conversation.

func init() {
	addRoutes(map[string]apiRoute{
		"GET /api/patient/{name}": {handler: (*Server).apiPatient, content: true},
		"PUT /api/patient/{name}": {handler: (*Server).apiSetPatient, content: true},
		"GET /api/export":         {handler: (*Server).apiExport, content: true},
	})
}

// patientJSON is a conversation's patient context; empty patient: none.
type patientJSON struct {
	Contact   string `json:"contact"`
	Patient   string `json:"patient"`
	Encounter string `json:"encounter"`
}

func (s *Server) apiPatient(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	name := r.PathValue("name")
	pc, err := cl.PatientContext(name)
	if err != nil {
		s.fail(w, err)
		return
	}
	out := patientJSON{Contact: name}
	if pc != nil {
		out.Patient, out.Encounter = pc.Patient, pc.Encounter
	}
	writeJSON(w, http.StatusOK, out)
}

type patientRequest struct {
	Patient   string `json:"patient"`
	Encounter string `json:"encounter"`
}

// apiSetPatient sets the context; an empty patient clears it.
func (s *Server) apiSetPatient(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	var req patientRequest
	if !readJSON(w, r, &req) {
		return
	}
	req.Patient, req.Encounter = strings.TrimSpace(req.Patient), strings.TrimSpace(req.Encounter)
	name := r.PathValue("name")
	var pc *client.PatientContext
	switch {
	case req.Patient == "" && req.Encounter != "":
		writeError(w, http.StatusBadRequest, "An encounter needs a patient.", "")
		return
	case req.Patient != "":
		pc = &client.PatientContext{Patient: req.Patient, Encounter: req.Encounter}
	}
	err := cl.SetPatientContext(r.Context(), name, pc)
	switch {
	case errors.Is(err, client.ErrPatientContext):
		writeError(w, http.StatusBadRequest, "Write each identifier as SYSTEM|VALUE, for example https://hospital.example/fhir/sid/mrn|MRN-0042.", "")
		return
	case err != nil:
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, patientJSON{Contact: name, Patient: req.Patient, Encounter: req.Encounter})
}

// apiExport answers the export file itself (?message=ID, or ?with=NAME
// for the whole conversation), to be saved by the browser. It is built
// whole before the first byte is sent, so a failure is an error answer,
// never a cut file.
func (s *Server) apiExport(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	q := r.URL.Query()
	opts := client.ExportOptions{MessageID: q.Get("message"), Contact: q.Get("with")}
	if (opts.MessageID == "") == (opts.Contact == "") {
		writeError(w, http.StatusBadRequest, "Give a message or a contact to export.", "see docs/API.md")
		return
	}
	var buf bytes.Buffer
	info, err := cl.ExportRecord(r.Context(), &buf, opts)
	switch {
	case errors.Is(err, client.ErrRecordTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, err.Error(), "export fewer messages: one at a time from each message's screen")
		return
	case err != nil:
		s.fail(w, err)
		return
	}
	writeRecord(w, buf.Bytes(), info)
}

// writeRecord answers an export file, to be saved by the browser.
func writeRecord(w http.ResponseWriter, data []byte, info client.ExportInfo) {
	name := "record-" + time.Now().UTC().Format("20060102-150405") + ".json"
	h := w.Header()
	h.Set("Content-Type", "application/fhir+json")
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Postern-Messages", fmt.Sprint(info.Messages))
	h.Set("X-Postern-Files", fmt.Sprint(info.Files))
	w.WriteHeader(http.StatusOK)
	w.Write(data)
}
