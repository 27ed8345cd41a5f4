package ui

import (
	"net/http"

	"github.com/postern/postern/client"
)

// Desktop notifications say nothing: the page (static/notify.js) shows
// "New secure message" for a message that arrives while it is not
// looked at, with no sender, subject or text, and only if this device's
// setting (client.SetDesktopNotifications) and the organisation's policy
// (Options.NoDesktopNotifications) allow it. The setting lives in the
// device's encrypted store rather than in the browser (which keeps
// nothing) or in a file of the ui server's own: it survives a restart,
// goes with the home, and is read by any front-end of the library.

// notifySentence is the answer to turning notifications on against the
// policy.
const notifySentence = "desktop notifications are turned off on this computer by your organisation's policy"

// notifySettings fills in what the settings say of the lock's policy and
// of notifications.
func (s *Server) notifySettings(st *settingsJSON, cl *client.Client) {
	st.IdleTimeoutByPolicy = s.idlePol
	st.NotificationsByPolicy = s.noNotify
	st.Notifications = !s.noNotify && cl.DesktopNotifications()
}

// setNotifications records this device's setting; turning them on is
// refused when the policy turns them off. It answers a failure itself.
func (s *Server) setNotifications(w http.ResponseWriter, cl *client.Client, on bool) bool {
	if on && s.noNotify {
		writeError(w, http.StatusForbidden, notifySentence, "ask whoever manages this computer")
		return false
	}
	if err := cl.SetDesktopNotifications(on); err != nil {
		s.fail(w, err)
		return false
	}
	return true
}
