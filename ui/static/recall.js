// Deleting a message for everyone (POST /api/messages/{id}/recall): the
// sender's "Delete for everyone" on the message screen, confirmed first,
// and the page brought up to date when a message is deleted elsewhere
// (the "recalled" event).

import { $, api, announce, currentScreen, failed, onEvent, onLock, onStart, state } from "./core.js";

let shown = null; // the ID of the sent message on the screen, or null

// build adds the button and its confirmation under the message's actions.
function build() {
  const button = document.createElement("button");
  button.type = "button";
  button.id = "recall-start";
  button.className = "secondary";
  button.textContent = "Delete for everyone";
  button.hidden = true;
  const box = document.createElement("div");
  box.id = "recall-box";
  box.className = "confirm";
  box.setAttribute("role", "group");
  box.setAttribute("aria-labelledby", "recall-question");
  box.hidden = true;
  const q = document.createElement("p");
  q.id = "recall-question";
  q.textContent = "Delete this message for everyone?";
  const note = document.createElement("p");
  note.className = "note";
  note.textContent =
    "It is deleted on your devices and on the recipient's, with its files; they see that you deleted it and when. " +
    "It cannot reach what was already saved or exported.";
  const actions = document.createElement("div");
  actions.className = "actions";
  const yes = document.createElement("button");
  yes.type = "button";
  yes.id = "recall-yes";
  yes.textContent = "Delete for everyone";
  const no = document.createElement("button");
  no.type = "button";
  no.id = "recall-no";
  no.className = "secondary";
  no.textContent = "Cancel";
  actions.append(yes, no);
  box.append(q, note, actions);
  const status = document.createElement("p");
  status.id = "recall-status";
  status.className = "note";
  status.setAttribute("role", "status");
  status.setAttribute("aria-live", "polite");
  document.querySelector("#screen-message .actions").append(button);
  document.querySelector("#screen-message .actions").after(box, status);
  button.addEventListener("click", ask);
  no.addEventListener("click", close);
  yes.addEventListener("click", recall);
}

function ask() {
  $("recall-box").hidden = false;
  $("recall-no").focus(); // the safe choice first
}

function close() {
  $("recall-box").hidden = true;
  if (!$("recall-start").hidden) {
    $("recall-start").focus();
  }
}

function hide() {
  shown = null;
  $("recall-start").hidden = true;
  $("recall-box").hidden = true;
  $("recall-status").textContent = "";
}

// refresh offers the button for a sent message not deleted yet.
async function refresh() {
  const m = location.hash.match(/^#\/m\/([^?]+)/);
  hide();
  if (!m || state.locked) {
    return;
  }
  const id = decodeURIComponent(m[1]);
  try {
    const msg = await api("GET", "/api/messages/" + encodeURIComponent(id));
    if (location.hash !== "#/m/" + m[1]) {
      return; // the page moved on meanwhile
    }
    if (msg.outgoing && !msg.notice && !msg.recalled) {
      shown = id;
      $("recall-start").hidden = false;
    }
  } catch (e) {
    if (e.status !== 404) {
      failed(e);
    }
  }
}

async function recall() {
  if (!shown) {
    return;
  }
  $("recall-yes").disabled = true;
  try {
    const r = await api("POST", `/api/messages/${encodeURIComponent(shown)}/recall`);
    $("recall-box").hidden = true;
    rerender();
    const said = r.warning ? `Message deleted. ${r.warning}` : "Message deleted for everyone";
    $("recall-status").textContent = said;
    announce(said);
  } catch (e) {
    failed(e);
  } finally {
    $("recall-yes").disabled = false;
  }
}

// rerender draws the current screen again (the message, or the list that
// shows it), through the router.
function rerender() {
  window.dispatchEvent(new HashChangeEvent("hashchange"));
}

onStart(() => {
  build();
  window.addEventListener("hashchange", refresh);
});
onLock(hide);
onEvent("recalled", (m) => {
  const here = location.hash === "#/m/" + encodeURIComponent(m.id);
  if (here || currentScreen() === "inbox") {
    rerender();
  }
  if (here) {
    announce(`${m.recalled_by === "me" ? "You" : m.recalled_by} deleted this message`);
  }
});
