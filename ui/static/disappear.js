// Disappearing messages on the page: the timer of the conversation shown
// on the message screen (GET/PUT /api/disappear/NAME), and the removal,
// as it happens, of every message that expires (the "expired" event).

import { $, state, api, announce, formatTime, updateTitle, onEvent, onLock, onStart, onUnlock, failed, shownConversation } from "./core.js";

// The choices offered; a timer set elsewhere (the CLI) that is not one of
// them is shown as it is.
const choices = [
  [0, "Off"],
  [30, "30 seconds"],
  [300, "5 minutes"],
  [3600, "1 hour"],
  [28800, "8 hours"],
  [86400, "1 day"],
  [604800, "1 week"],
  [2419200, "4 weeks"],
];

let shown = null; // {id, peer}: the message on the screen and its contact

function timerText(seconds) {
  const c = choices.find(([s]) => s === seconds);
  if (c) {
    return c[1].toLowerCase();
  }
  for (const [unit, name] of [[604800, "week"], [86400, "day"], [3600, "hour"], [60, "minute"], [1, "second"]]) {
    if (seconds % unit === 0) {
      const n = seconds / unit;
      return `${n} ${name}${n === 1 ? "" : "s"}`;
    }
  }
  return `${seconds} seconds`;
}

// build adds the control to the message screen, under its actions.
function build() {
  const form = document.createElement("form");
  form.id = "disappear-form";
  form.className = "inline";
  form.hidden = true;
  const label = document.createElement("label");
  label.htmlFor = "disappear-select";
  label.id = "disappear-label";
  label.textContent = "Disappearing messages";
  const select = document.createElement("select");
  select.id = "disappear-select";
  select.name = "seconds";
  const button = document.createElement("button");
  button.type = "submit";
  button.id = "disappear-button";
  button.textContent = "Set timer";
  form.append(label, select, button);
  const note = document.createElement("p");
  note.id = "disappear-note";
  note.className = "note";
  note.setAttribute("role", "status");
  note.setAttribute("aria-live", "polite");
  note.hidden = true;
  const actions = document.querySelector("#screen-message .actions");
  actions.after(form, note);
  form.addEventListener("submit", save);
}

function render(peer, seconds, expires) {
  const select = $("disappear-select");
  const opts = choices.map(([s, name]) => option(s, name));
  if (!choices.some(([s]) => s === seconds)) {
    opts.push(option(seconds, timerText(seconds)));
  }
  select.replaceChildren(...opts);
  select.value = String(seconds);
  $("disappear-label").textContent = `Disappearing messages with ${peer}`;
  $("disappear-form").hidden = false;
  const notes = [];
  if (expires) {
    notes.push(`This message disappears at ${formatTime(expires)}, on both sides.`);
  }
  notes.push(
    seconds === 0
      ? "New messages in this conversation stay."
      : `New messages in this conversation disappear ${timerText(seconds)} after they are sent, on every device of both of you.`,
  );
  $("disappear-note").textContent = notes.join(" ");
  $("disappear-note").hidden = false;
}

function option(seconds, name) {
  const o = document.createElement("option");
  o.value = String(seconds);
  o.textContent = name;
  return o;
}

// hide drops what the control shows (on other screens, and when the page
// locks: no name or time is left in it).
function hide() {
  shown = null;
  $("disappear-form").hidden = true;
  $("disappear-note").hidden = true;
  $("disappear-label").textContent = "Disappearing messages";
  $("disappear-note").textContent = "";
  $("disappear-select").replaceChildren();
}

// refresh shows the control for the message the address names, if any.
async function refresh() {
  try {
    const c = await shownConversation();
    if (!c || !c.peer) {
      hide();
      return;
    }
    const t = await api("GET", "/api/disappear/" + encodeURIComponent(c.peer));
    if (!c.still()) {
      return; // the page moved on meanwhile
    }
    shown = { id: c.id, peer: c.peer, expires: c.msg.expires };
    render(c.peer, t.seconds, c.msg.expires);
  } catch (e) {
    hide();
    if (e.status !== 404) {
      failed(e);
    }
  }
}

async function save(ev) {
  ev.preventDefault();
  if (!shown) {
    return;
  }
  const seconds = Number($("disappear-select").value);
  $("disappear-button").disabled = true;
  try {
    const t = await api("PUT", "/api/disappear/" + encodeURIComponent(shown.peer), { seconds });
    render(shown.peer, t.seconds, shown.expires);
    announce(seconds === 0 ? "Disappearing messages are off" : `Messages now disappear after ${timerText(seconds)}`);
  } catch (e) {
    failed(e);
  } finally {
    $("disappear-button").disabled = false;
  }
}

// expired removes a message that was deleted from everything the page
// shows of it; if it was on the screen, the page goes back to its folder.
function expired(d) {
  state.messages = state.messages.filter((m) => m.id !== d.id);
  for (const tr of document.querySelectorAll("#inbox-rows tr")) {
    if (tr.dataset.id === d.id) {
      tr.remove();
    }
  }
  if ($("inbox-rows").children.length === 0) {
    $("inbox-table").hidden = true;
    $("inbox-empty").hidden = false;
  }
  for (const a of document.querySelectorAll("#thread-list a")) {
    if (a.getAttribute("href") === "#/m/" + encodeURIComponent(d.id)) {
      a.closest("li").remove();
    }
  }
  $("thread").hidden = $("thread").hidden || $("thread-list").children.length === 0;
  if (location.hash === "#/m/" + encodeURIComponent(d.id)) {
    const back = $("msg-back").getAttribute("href") || "#/inbox";
    location.hash = back;
  }
  announce("A disappearing message was deleted");
  // The unread count in the title may have dropped with it.
  api("GET", "/api/folders")
    .then((fs) => {
      state.folders = fs;
      updateTitle();
    })
    .catch(() => {});
}

// --- the Settings screen: every conversation's timer ---

// showTimers lists the contacts with their timers on the Settings screen,
// each with a select and its button to change it.
async function showTimers() {
  if (state.locked || location.hash !== "#/settings") {
    return;
  }
  try {
    const cs = await api("GET", "/api/contacts");
    const rows = cs.map((c) => timerRow(c.name, c.disappear_seconds || 0));
    $("set-disappear-rows").replaceChildren(...rows);
    $("set-disappear-table").hidden = rows.length === 0;
    $("set-disappear-empty").hidden = rows.length > 0;
  } catch (e) {
    failed(e);
  }
}

function timerRow(name, seconds) {
  const tr = document.createElement("tr");
  const who = document.createElement("td");
  who.textContent = name;
  const sel = document.createElement("select");
  sel.setAttribute("aria-label", `Disappearing messages with ${name}`);
  sel.dataset.name = name;
  const opts = choices.map(([s, label]) => option(s, label));
  if (!choices.some(([s]) => s === seconds)) {
    opts.push(option(seconds, timerText(seconds)));
  }
  sel.replaceChildren(...opts);
  sel.value = String(seconds);
  const td = document.createElement("td");
  td.append(sel);
  const button = document.createElement("button");
  button.type = "button";
  button.className = "secondary";
  button.textContent = "Set timer";
  button.setAttribute("aria-label", `Set timer for ${name}`);
  button.addEventListener("click", () => setTimer(name, sel, button));
  const act = document.createElement("td");
  act.append(button);
  tr.append(who, td, act);
  return tr;
}

async function setTimer(name, sel, button) {
  const seconds = Number(sel.value);
  button.disabled = true;
  try {
    const t = await api("PUT", "/api/disappear/" + encodeURIComponent(name), { seconds });
    sel.value = String(t.seconds);
    $("set-disappear-status").textContent =
      t.seconds === 0 ? `Messages with ${name} stay` : `Messages with ${name} now disappear after ${timerText(t.seconds)}`;
  } catch (e) {
    failed(e);
  } finally {
    button.disabled = false;
  }
}

function hideTimers() {
  $("set-disappear-rows").replaceChildren();
  $("set-disappear-status").textContent = "";
}

onStart(() => {
  build();
  window.addEventListener("hashchange", refresh);
  window.addEventListener("hashchange", showTimers);
});
onUnlock(showTimers);
onLock(hideTimers);
onEvent("expired", expired);
onEvent("contact", (d) => {
  if (d.change === "disappearing" && shown && shown.peer === d.name) {
    refresh();
  }
  if (d.change === "disappearing") {
    showTimers();
  }
});
onUnlock(refresh);
onLock(hide);
