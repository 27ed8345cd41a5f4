package ui

import (
	"net/http"
	"time"

	"github.com/postern/postern/client"
)

// The inbox's endpoints: folders, moves, threads, drafts and settings,
// each the library's operation of the same name (client/folders.go,
// client/drafts.go, client/receipts.go). What they change on this device
// reaches the person's other devices through the library's sync.

// folderJSON is a folder with its counts: id is inbox, sent, drafts,
// archive or the 32 hex digits of a folder of one's own.
type folderJSON struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	System   bool       `json:"system,omitempty"`
	Messages int        `json:"messages"`
	Unread   int        `json:"unread"`
	Created  *time.Time `json:"created,omitempty"`
}

func folderToJSON(f client.Folder) folderJSON {
	j := folderJSON{ID: f.ID, Name: f.Name, System: f.System, Messages: f.Messages, Unread: f.Unread}
	if !f.Created.IsZero() {
		t := f.Created.UTC()
		j.Created = &t
	}
	return j
}

func (s *Server) apiFolders(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	fs, err := cl.Folders()
	if err != nil {
		s.fail(w, err)
		return
	}
	out := make([]folderJSON, 0, len(fs))
	for _, f := range fs {
		out = append(out, folderToJSON(f))
	}
	writeJSON(w, http.StatusOK, out)
}

type folderRequest struct {
	Name string `json:"name"`
}

func (s *Server) apiCreateFolder(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	var req folderRequest
	if !readJSON(w, r, &req) {
		return
	}
	f, err := cl.CreateFolder(r.Context(), req.Name)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, folderToJSON(f))
}

// apiRenameFolder renames a folder of one's own and answers the folders
// as they are now.
func (s *Server) apiRenameFolder(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	var req folderRequest
	if !readJSON(w, r, &req) {
		return
	}
	if err := cl.RenameFolder(r.Context(), r.PathValue("id"), req.Name); err != nil {
		s.fail(w, err)
		return
	}
	s.apiFolders(w, r, cl)
}

// apiDeleteFolder deletes a folder of one's own; its messages show in
// their default folder again (Inbox or Sent).
func (s *Server) apiDeleteFolder(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	if err := cl.DeleteFolder(r.Context(), r.PathValue("id")); err != nil {
		s.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// apiMove puts a message into a folder and answers the message as it is
// now.
func (s *Server) apiMove(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	var req struct {
		Folder string `json:"folder"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	id := r.PathValue("id")
	if err := cl.MoveMessage(r.Context(), id, req.Folder); err != nil {
		s.fail(w, err)
		return
	}
	s.writeMessage(w, cl, id)
}

// writeMessage answers message id as stored, with its folder (Message
// gives it; Messages does too, but only a page at a time).
func (s *Server) writeMessage(w http.ResponseWriter, cl *client.Client, id string) {
	m, err := cl.Message(id)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.toJSON(m))
}

// apiThread is the thread of a message, oldest first (client.Thread).
func (s *Server) apiThread(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	ms, err := cl.Thread(r.PathValue("id"))
	if err != nil {
		s.fail(w, err)
		return
	}
	out := make([]messageJSON, 0, len(ms))
	for _, m := range ms {
		out = append(out, s.toJSON(m))
	}
	writeJSON(w, http.StatusOK, out)
}

type draftJSON struct {
	ID      string    `json:"id"`
	To      string    `json:"to,omitempty"`
	Subject string    `json:"subject,omitempty"`
	Text    string    `json:"text"`
	ReplyTo string    `json:"reply_to,omitempty"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

func draftToJSON(d client.Draft) draftJSON {
	return draftJSON{ID: d.ID, To: d.To, Subject: d.Subject, Text: d.Text, ReplyTo: d.ReplyTo,
		Created: d.Created.UTC(), Updated: d.Updated.UTC()}
}

// apiDrafts lists the drafts, the last changed first.
func (s *Server) apiDrafts(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	ds, err := cl.Drafts()
	if err != nil {
		s.fail(w, err)
		return
	}
	out := make([]draftJSON, 0, len(ds))
	for _, d := range ds {
		out = append(out, draftToJSON(d))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiDraft(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	d, err := cl.Draft(r.PathValue("id"))
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, draftToJSON(d))
}

// apiSaveDraft saves a draft: a new one without id, else the draft id
// (all of its fields replaced). It answers the draft as saved.
func (s *Server) apiSaveDraft(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	var req struct {
		ID      string `json:"id,omitempty"`
		To      string `json:"to,omitempty"`
		Subject string `json:"subject,omitempty"`
		Text    string `json:"text"`
		ReplyTo string `json:"reply_to,omitempty"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	d, err := cl.SaveDraft(r.Context(), client.Draft{ID: req.ID, To: req.To, Subject: req.Subject, Text: req.Text, ReplyTo: req.ReplyTo})
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, draftToJSON(d))
}

func (s *Server) apiDeleteDraft(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	if err := cl.DeleteDraft(r.Context(), r.PathValue("id")); err != nil {
		s.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// apiSendDraft sends a draft and deletes it; the answer is that of
// POST /api/send.
func (s *Server) apiSendDraft(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	m, err := cl.SendDraft(r.Context(), r.PathValue("id"))
	s.writeSent(w, m, err)
}

// settingsJSON: read_receipts can be changed; idle_timeout_seconds is the
// lock's timeout, which may be set shorter than idle_timeout_max_seconds,
// the one postern ui started with (locktimeout.go).
type settingsJSON struct {
	ReadReceipts   bool  `json:"read_receipts"`
	IdleTimeout    int64 `json:"idle_timeout_seconds"`
	IdleTimeoutMax int64 `json:"idle_timeout_max_seconds"`
	// notify.go: the idle timeout set by the organisation's
	// policy; desktop notifications on this device, and off by policy.
	IdleTimeoutByPolicy   bool `json:"idle_timeout_by_policy,omitempty"`
	Notifications         bool `json:"desktop_notifications"`
	NotificationsByPolicy bool `json:"desktop_notifications_by_policy,omitempty"`
}

func (s *Server) apiSettings(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	st := settingsJSON{ReadReceipts: cl.ReadReceipts(), IdleTimeout: int64(s.lockTimeout() / time.Second),
		IdleTimeoutMax: int64(s.idle / time.Second)}
	s.notifySettings(&st, cl)
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) apiPutSettings(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	var req struct {
		ReadReceipts  *bool  `json:"read_receipts"`
		Notifications *bool  `json:"desktop_notifications"`
		IdleTimeout   *int64 `json:"idle_timeout_seconds"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	if req.IdleTimeout != nil && !s.setLockTimeout(w, cl, *req.IdleTimeout) {
		return
	}
	if req.Notifications != nil && !s.setNotifications(w, cl, *req.Notifications) {
		return
	}
	if req.ReadReceipts != nil {
		if err := cl.SetReadReceipts(*req.ReadReceipts); err != nil {
			s.fail(w, err)
			return
		}
	}
	s.apiSettings(w, r, cl)
}
