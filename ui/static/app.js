// The page of `postern ui`. It keeps nothing in the browser's storage:
// what it shows lives in this page's memory and comes from the API
// (docs/API.md). Text from messages and contacts is only ever set as
// textContent, never parsed as HTML.

import {
  $, state, api, hooks, showScreen, showError, announce, formatTime, updateTitle,
  currentScreen, failed, cell, duration, takenOver, recalledText, newNavigation, ticket,
} from "./core.js";
import "./setup.js";
import "./search.js";
import "./notify.js";
import { attachmentIDs, resetAttachments, fileItem, markAttachments } from "./attach.js";
import "./contacts.js";
import "./devices.js";
import "./disappear.js";
import "./recall.js";
import "./record.js";
import "./groups.js";
import "./team.js";
import "./roles.js";
import "./teamnotice.js";
import "./directory.js";
import { composeStatus, settingsStatus } from "./status.js";

// --- lock ---

function locked() {
  newNavigation(); // a screen still loading does not show over the lock
  if (state.events) {
    state.events.close();
    state.events = null;
  }
  state.locked = true;
  state.messages = [];
  state.contacts = [];
  state.folders = [];
  state.drafts = [];
  dropDraft();
  $("inbox-rows").replaceChildren();
  $("inbox-head").replaceChildren();
  $("folder-list").replaceChildren();
  $("thread-list").replaceChildren();
  $("move-folder").replaceChildren();
  $("folder-edit-form").reset();
  $("contacts-rows").replaceChildren();
  $("devices-rows").replaceChildren();
  for (const id of ["msg-subject", "msg-from", "msg-to", "msg-time", "msg-text", "msg-state", "compose-replying", "compose-draft-status", "folder-title", "me"]) {
    $(id).textContent = "";
  }
  $("msg-files").replaceChildren();
  $("contact-names").replaceChildren();
  $("compose-form").reset();
  $("compose-reply-to").value = "";
  for (const fn of hooks.onLock) {
    fn();
  }
  updateTitle();
  showScreen("unlock");
  $("passphrase").focus();
}

async function unlock(ev) {
  ev.preventDefault();
  const field = $("passphrase");
  const err = $("unlock-error");
  err.hidden = true;
  $("unlock-button").disabled = true;
  try {
    const st = await api("POST", "/api/unlock", { passphrase: field.value });
    field.value = "";
    if (!(await takenOver(st))) {
      await unlocked();
    }
  } catch (e) {
    if (e.status !== 401) {
      err.textContent = e.message;
      err.hidden = false;
      field.select();
    }
  } finally {
    $("unlock-button").disabled = false;
  }
}

async function unlocked() {
  state.locked = false;
  const me = await api("GET", "/api/whoami");
  $("me").textContent = me.name;
  for (const fn of hooks.onUnlock) {
    await fn();
  }
  listen();
  await route();
}

async function lockNow() {
  try {
    await api("POST", "/api/lock");
  } catch (e) {
    // Locked or signed out already: the screens say so.
  }
  locked();
}

// ping tells the server the person is here, at most every 20 s, so that
// the idle timeout counts from the last key press or click.
function activity() {
  const now = Date.now();
  if (state.locked || now - state.lastPing < 20000) {
    return;
  }
  state.lastPing = now;
  api("POST", "/api/ping").catch(() => {});
}

// --- live events ---

function listen() {
  if (state.events) {
    return;
  }
  const es = new EventSource("/api/events");
  state.events = es;
  es.addEventListener("message", async (ev) => {
    const m = JSON.parse(ev.data);
    if (!m.outgoing) {
      announce("New secure message");
    }
    // The counts first, then the row: what the row shows, the title and
    // the folder list already say.
    await loadFolders().catch(() => {});
    showLive(m);
  });
  // A receipt: the Sent folder's READ column changes.
  es.addEventListener("receipt", (ev) => {
    showLive(JSON.parse(ev.data));
  });
  // Events were dropped: read again what the screen shows of the
  // lists (not the compose screen: what is typed stays).
  es.addEventListener("missed", () => {
    (currentScreen() === "inbox" ? showFolder(state.folder) : loadFolders()).catch(failed);
  });
  for (const h of hooks.events) {
    es.addEventListener(h.type, (ev) => h.fn(JSON.parse(ev.data)));
  }
  es.addEventListener("locked", () => {
    locked();
  });
  es.addEventListener("error", () => {
    if (es.readyState === EventSource.CLOSED && state.events === es) {
      state.events = null;
      checkState();
    }
  });
}

// showLive shows a message that arrived or changed if its folder is on
// the screen.
function showLive(m) {
  if (m.folder !== state.folder || state.folder === "drafts") {
    return;
  }
  const fresh = upsert(m);
  if (currentScreen() === "inbox") {
    showInRow(m, fresh);
  }
}

function upsert(m) {
  const i = state.messages.findIndex((x) => x.id === m.id);
  if (i >= 0) {
    state.messages[i] = m;
    return false;
  }
  state.messages.unshift(m);
  return true;
}

// --- folders ---

function folderName(id) {
  const f = state.folders.find((x) => x.id === id);
  return f ? f.name : id;
}

async function loadFolders() {
  state.folders = await api("GET", "/api/folders");
  renderFolders();
  updateTitle();
}

function renderFolders() {
  const items = state.folders.map((f) => {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = f.id === "inbox" ? "#/inbox" : "#/folder/" + encodeURIComponent(f.id);
    a.dataset.folder = f.id;
    const name = document.createElement("span");
    name.textContent = f.name;
    a.append(name);
    if (f.unread > 0 && f.id !== "drafts") {
      const n = document.createElement("span");
      n.className = "count";
      n.textContent = String(f.unread);
      const sr = document.createElement("span");
      sr.className = "sr";
      sr.textContent = " unread";
      n.append(sr);
      a.append(n);
    }
    if (f.id === state.folder) {
      a.setAttribute("aria-current", "page");
    }
    li.append(a);
    return li;
  });
  $("folder-list").replaceChildren(...items);
}

async function createFolder(ev) {
  ev.preventDefault();
  const field = $("folder-new-name");
  try {
    const f = await api("POST", "/api/folders", { name: field.value.trim() });
    field.value = "";
    announce(`Folder ${f.name} created`);
    await loadFolders();
  } catch (e) {
    failed(e);
  }
}

async function renameFolder(ev) {
  ev.preventDefault();
  const id = state.folder;
  try {
    state.folders = await api("PATCH", "/api/folders/" + encodeURIComponent(id), { name: $("folder-rename").value.trim() });
    renderFolders();
    $("folder-title").textContent = folderName(id);
    announce(`Folder renamed to ${folderName(id)}`);
  } catch (e) {
    failed(e);
  }
}

async function deleteFolder() {
  const name = folderName(state.folder);
  try {
    await api("DELETE", "/api/folders/" + encodeURIComponent(state.folder));
    announce(`Folder ${name} deleted; its messages are back in Inbox or Sent`);
    location.hash = "#/inbox";
  } catch (e) {
    failed(e);
  }
}

// --- a folder's messages ---

// A folder shows pageSize messages at first and more on request: a
// table of thousands of rows takes the browser seconds to lay out.
const pageSize = 100;

function headRow(names) {
  const tr = document.createElement("tr");
  for (const n of names) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = n;
    tr.append(th);
  }
  return tr;
}

async function showFolder(id) {
  const current = ticket();
  await loadFolders();
  if (!state.folders.some((f) => f.id === id)) {
    id = "inbox";
  }
  state.folder = id;
  renderFolders();
  const f = state.folders.find((x) => x.id === id);
  $("folder-title").textContent = f.name;
  $("folder-edit-form").hidden = f.system;
  $("folder-note").hidden = f.system;
  $("folder-rename").value = f.system ? "" : f.name;
  if (id === "drafts") {
    await loadDrafts();
  } else {
    const list = await api("GET", `/api/inbox?folder=${encodeURIComponent(id)}&limit=${pageSize + 1}`);
    state.messages = list.slice(0, pageSize);
    renderInbox();
    $("inbox-more").hidden = list.length <= pageSize;
  }
  if (!current()) {
    return; // another screen was asked for meanwhile
  }
  showScreen("inbox");
}

async function loadOlder() {
  const last = state.messages[state.messages.length - 1];
  if (!last) {
    return;
  }
  try {
    const list = await api("GET", `/api/inbox?folder=${encodeURIComponent(state.folder)}&limit=${pageSize + 1}&before=${encodeURIComponent(last.id)}`);
    const page = list.slice(0, pageSize).filter((m) => !state.messages.some((x) => x.id === m.id));
    state.messages.push(...page);
    $("inbox-rows").append(...page.map(inboxRow));
    $("inbox-more").hidden = list.length <= pageSize;
    announce(`${page.length} older messages shown`);
  } catch (e) {
    failed(e);
  }
}

function shortTime(iso) {
  const d = new Date(iso);
  if (isNaN(d)) {
    return "";
  }
  const hm = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return d.toDateString() === new Date().toDateString() ? hm : `${d.toLocaleDateString()} ${hm}`;
}

// readState is the Sent folder's READ column: "Read 14:05", "Delivered"
// or nothing.
function readState(m) {
  if (m.read_receipt) {
    return "Read " + shortTime(m.read_receipt);
  }
  return m.delivered ? "Delivered" : "";
}

function subjectLink(href, text, unread, urgent) {
  const td = document.createElement("td");
  const a = document.createElement("a");
  a.href = href;
  a.textContent = text;
  if (unread) {
    const s = document.createElement("span");
    s.className = "sr";
    s.textContent = "Unread: ";
    td.append(s);
  }
  if (urgent) {
    const u = document.createElement("span");
    u.className = "badge urgent";
    u.textContent = "Urgent";
    td.append(u, " ");
  }
  td.append(a);
  return td;
}

function inboxRow(m) {
  const tr = document.createElement("tr");
  tr.dataset.id = m.id;
  if (m.unread) {
    tr.className = "unread";
  }
  tr.append(
    cell(m.outgoing ? `To ${m.to}` : m.from),
    markAttachments(subjectLink("#/m/" + encodeURIComponent(m.id), m.recalled ? recalledText(m) : m.subject || firstLine(m.text) || "(no subject)", m.unread, m.urgent), m),
    cell(formatTime(m.time), "time"),
  );
  if (state.folder === "sent") {
    tr.append(cell(readState(m), "read"));
  }
  return tr;
}

function renderInbox() {
  const sent = state.folder === "sent";
  $("inbox-head").replaceChildren(headRow(sent ? ["To", "Subject", "Time", "Read"] : ["From", "Subject", "Time"]));
  $("inbox-caption").textContent = sent
    ? "Sent messages, newest first, with when each was delivered and read."
    : "Messages, newest first. Unread messages are in bold.";
  const rows = state.messages.map(inboxRow);
  $("inbox-rows").replaceChildren(...rows);
  $("inbox-empty").textContent = "No messages here.";
  $("inbox-empty").hidden = rows.length > 0;
  $("inbox-table").hidden = rows.length === 0;
}

// showInRow shows one message that arrived or changed without building
// the other rows again: a new one goes on top, a changed one replaces
// its row.
function showInRow(m, fresh) {
  const body = $("inbox-rows");
  const row = inboxRow(m);
  const old = fresh ? null : [...body.children].find((tr) => tr.dataset.id === m.id);
  if (old) {
    old.replaceWith(row);
  } else if (fresh) {
    body.prepend(row);
  }
  $("inbox-empty").hidden = true;
  $("inbox-table").hidden = false;
}

function firstLine(text) {
  const line = (text || "").split("\n")[0];
  return line.length > 80 ? line.slice(0, 80) + "…" : line;
}

// --- drafts ---

async function loadDrafts() {
  state.drafts = await api("GET", "/api/drafts");
  state.messages = [];
  $("inbox-head").replaceChildren(headRow(["To", "Subject", "Last saved"]));
  $("inbox-caption").textContent = "Drafts, the last changed first. Open one to go on writing it.";
  const rows = state.drafts.map((d) => {
    const tr = document.createElement("tr");
    tr.dataset.id = d.id;
    tr.append(
      cell(d.to || "(no recipient)"),
      subjectLink("#/compose?draft=" + encodeURIComponent(d.id), d.subject || firstLine(d.text) || "(no subject)", false),
      cell(formatTime(d.updated), "time"),
    );
    return tr;
  });
  $("inbox-rows").replaceChildren(...rows);
  $("inbox-empty").textContent = "No drafts.";
  $("inbox-empty").hidden = rows.length > 0;
  $("inbox-table").hidden = rows.length === 0;
  $("inbox-more").hidden = true;
}

// The compose screen saves its draft a second after the last change;
// saves run one after the other, so that a new draft gets one ID.
const draftDelay = 1000;

function draftChanged() {
  if (!state.draft) {
    state.draft = { id: "", saving: Promise.resolve(), timer: 0 };
  }
  clearTimeout(state.draft.timer);
  state.draft.timer = setTimeout(() => {
    state.draft.timer = 0;
    saveDraft().catch(() => {});
  }, draftDelay);
}

function composeFields() {
  const body = {
    to: $("compose-to").value.trim(),
    subject: $("compose-subject").value,
    text: $("compose-text").value,
  };
  const replyTo = $("compose-reply-to").value;
  if (replyTo) {
    body.reply_to = replyTo;
  }
  return body;
}

function saveDraft() {
  const d = state.draft;
  if (!d) {
    return Promise.resolve();
  }
  d.saving = d.saving
    .catch(() => {})
    .then(async () => {
      if (state.draft !== d) {
        return;
      }
      const body = composeFields();
      if (d.id) {
        body.id = d.id;
      }
      try {
        const saved = await api("POST", "/api/drafts", body);
        d.id = saved.id;
        $("compose-discard").hidden = false;
        $("compose-draft-status").textContent = "Draft saved " + shortTime(saved.updated);
      } catch (e) {
        if (e.status === 401 || e.status === 423) {
          return;
        }
        // An unknown contact is not known yet while it is typed: the
        // draft is kept without it.
        if (e.status === 404 && body.to) {
          delete body.to;
          const saved = await api("POST", "/api/drafts", body);
          d.id = saved.id;
          $("compose-discard").hidden = false;
          $("compose-draft-status").textContent = "Draft saved " + shortTime(saved.updated);
          return;
        }
        $("compose-draft-status").textContent = "Draft not saved: " + e.message;
      }
    });
  return d.saving;
}

// flushDraft saves at once what waits for the delay.
async function flushDraft() {
  const d = state.draft;
  if (d && d.timer) {
    clearTimeout(d.timer);
    d.timer = 0;
    await saveDraft();
  }
  if (d) {
    await d.saving.catch(() => {});
  }
}

function dropDraft() {
  if (state.draft) {
    clearTimeout(state.draft.timer);
  }
  state.draft = null;
}

async function discardDraft() {
  const d = state.draft;
  if (!d) {
    return;
  }
  await flushDraft();
  dropDraft();
  try {
    if (d.id) {
      await api("DELETE", "/api/drafts/" + encodeURIComponent(d.id));
    }
    announce("Draft deleted");
    location.hash = "#/folder/drafts";
  } catch (e) {
    failed(e);
  }
}

// --- a message ---

async function showMessage(id) {
  const current = ticket();
  const m = await api("GET", "/api/messages/" + encodeURIComponent(id));
  const [thread] = await Promise.all([api("GET", "/api/thread/" + encodeURIComponent(id)), loadFolders()]);
  $("msg-subject").textContent = m.recalled ? "(deleted message)" : m.subject || "(no subject)";
  $("msg-from").textContent = m.outgoing ? "me" : m.from;
  $("msg-to").textContent = m.outgoing ? m.to : "me";
  $("msg-time").textContent = formatTime(m.time);
  $("msg-text").textContent = m.recalled ? recalledText(m) : m.text;
  const notes = [];
  if (m.urgent) {
    notes.push("Urgent.");
  }
  if (m.forwarded_for) {
    notes.push(`Forwarded for ${m.forwarded_for}.`);
  } else if (m.forwarded_to) {
    notes.push(`Also forwarded to ${m.forwarded_to}: ${m.forward_reason}.`);
  } else if (m.not_forwarded) {
    notes.push(`Not forwarded to ${m.not_forwarded}, who is not a contact you can write to: ${m.forward_reason}.`);
  }
  if (m.send_error) {
    notes.push(`Not sent: ${m.send_error}`);
  } else if (m.queued) {
    notes.push("Waiting to be sent");
  } else if (m.outgoing && readState(m)) {
    notes.push(readState(m));
  }
  $("msg-state").textContent = notes.join(" ");
  $("msg-state").hidden = notes.length === 0;
  const files = $("msg-files");
  files.replaceChildren(
    ...(m.attachments || []).map((f, i) => fileItem(m.id, i, f)),
  );
  files.hidden = !(m.attachments && m.attachments.length);
  const reply = $("msg-reply");
  reply.hidden = m.notice || Boolean(m.recalled);
  reply.href = "#/compose?reply=" + encodeURIComponent(m.id);
  const back = $("msg-back");
  back.href = m.folder && m.folder !== "inbox" ? "#/folder/" + encodeURIComponent(m.folder) : "#/inbox";
  back.textContent = `Back to ${folderName(m.folder || "inbox")}`;
  // A message may go to Archive, a folder of one's own, or back to its
  // own default folder (Inbox or Sent).
  const home = m.outgoing ? "sent" : "inbox";
  const opts = state.folders
    .filter((f) => !f.system || f.id === "archive" || f.id === home)
    .map((f) => {
      const o = document.createElement("option");
      o.value = f.id;
      o.textContent = f.name;
      o.selected = f.id === m.folder;
      return o;
    });
  $("move-folder").replaceChildren(...opts);
  $("move-form").dataset.id = m.id;
  $("move-form").hidden = m.notice;
  const others = thread.filter((x) => x.id !== m.id);
  $("thread-list").replaceChildren(
    ...others.map((x) => {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = "#/m/" + encodeURIComponent(x.id);
      a.textContent = `${x.outgoing ? "me" : x.from}, ${formatTime(x.time)}: ${x.recalled ? recalledText(x) : x.subject || firstLine(x.text) || "(no subject)"}`;
      li.append(a);
      return li;
    }),
  );
  $("thread").hidden = others.length === 0;
  if (!current()) {
    return;
  }
  showScreen("message");
  $("msg-subject").setAttribute("tabindex", "-1");
  $("msg-subject").focus();
}

async function moveMessage(ev) {
  ev.preventDefault();
  const id = $("move-form").dataset.id;
  const folder = $("move-folder").value;
  try {
    const m = await api("POST", `/api/messages/${encodeURIComponent(id)}/move`, { folder });
    await loadFolders();
    const back = $("msg-back");
    back.href = m.folder !== "inbox" ? "#/folder/" + encodeURIComponent(m.folder) : "#/inbox";
    back.textContent = `Back to ${folderName(m.folder)}`;
    announce(`Moved to ${folderName(m.folder)}`);
  } catch (e) {
    failed(e);
  }
}

// --- compose ---

async function loadContacts() {
  state.contacts = await api("GET", "/api/contacts");
  const opts = state.contacts
    .filter((c) => !c.blocked)
    .map((c) => {
      const o = document.createElement("option");
      o.value = c.name;
      return o;
    });
  $("contact-names").replaceChildren(...opts);
}

async function showCompose(params) {
  const current = ticket();
  await loadContacts();
  dropDraft();
  const form = $("compose-form");
  form.reset();
  resetAttachments(false);
  $("compose-reply-to").value = "";
  $("compose-error").hidden = true;
  $("compose-draft-status").textContent = "";
  $("compose-discard").hidden = true;
  const replying = $("compose-replying");
  replying.hidden = true;
  const replyID = params.get("reply");
  const draftID = params.get("draft");
  let replyTo = replyID;
  if (draftID) {
    const d = await api("GET", "/api/drafts/" + encodeURIComponent(draftID));
    state.draft = { id: d.id, saving: Promise.resolve(), timer: 0 };
    $("compose-to").value = d.to || "";
    $("compose-subject").value = d.subject || "";
    $("compose-text").value = d.text;
    $("compose-reply-to").value = d.reply_to || "";
    $("compose-discard").hidden = false;
    replyTo = d.reply_to;
  } else if (replyID) {
    const m = await api("GET", "/api/messages/" + encodeURIComponent(replyID));
    $("compose-to").value = m.outgoing ? m.to : m.from;
    const subj = m.subject || "";
    $("compose-subject").value = subj && !/^re:/i.test(subj) ? "Re: " + subj : subj;
    $("compose-reply-to").value = m.id;
  } else if (params.get("to")) {
    $("compose-to").value = params.get("to");
  }
  if (replyTo) {
    const m = await api("GET", "/api/messages/" + encodeURIComponent(replyTo));
    replying.textContent = `Replying to ${m.outgoing ? "your message to " + m.to : m.from}`;
    replying.hidden = false;
  }
  if (!current()) {
    return;
  }
  showScreen("compose");
  (replyID || draftID ? $("compose-text") : $("compose-to")).focus();
  await composeStatus(); // the addressee's availability (status.js)
}

async function send(ev) {
  ev.preventDefault();
  const err = $("compose-error");
  err.hidden = true;
  $("compose-send").disabled = true;
  try {
    let res;
    const d = state.draft;
    const files = await attachmentIDs();
    const urgent = $("compose-urgent").checked;
    if (files.length || urgent) {
      // Sent with its files, or as urgent, by /api/send; a draft of it
      // is deleted (drafts keep text only).
      if (d) {
        clearTimeout(d.timer);
        d.timer = 0;
        await d.saving.catch(() => {});
      }
      res = await api("POST", "/api/send", { ...composeFields(), attachments: files, urgent });
      if (d && d.id) {
        await api("DELETE", "/api/drafts/" + encodeURIComponent(d.id)).catch(() => {});
      }
      resetAttachments(true);
    } else if (d) {
      // Saved as it is now (an unknown contact is refused here, in the
      // sentence of a send), then sent and deleted as a draft.
      clearTimeout(d.timer);
      d.timer = 0;
      await d.saving.catch(() => {});
      const body = composeFields();
      if (d.id) {
        body.id = d.id;
      }
      d.id = (await api("POST", "/api/drafts", body)).id;
      res = await api("POST", `/api/drafts/${encodeURIComponent(d.id)}/send`);
    } else {
      res = await api("POST", "/api/send", composeFields());
    }
    dropDraft();
    announce(res.queued ? res.queued : "Message sent");
    location.hash = "#/m/" + encodeURIComponent(res.message.id);
  } catch (e) {
    if (e.status !== 401 && e.status !== 423) {
      err.textContent = e.hint ? `${e.message}. ${e.hint}.` : e.message;
      err.hidden = false;
    }
  } finally {
    $("compose-send").disabled = false;
  }
}

// --- settings ---

async function showSettings() {
  const current = ticket();
  const st = await api("GET", "/api/settings");
  $("set-receipts").checked = st.read_receipts;
  $("settings-status").textContent = "";
  idleText(st);
  const sel = $("set-idle-select");
  const max = st.idle_timeout_max_seconds;
  const opts = [60, 120, 300, 600, 900, 1800, 3600].filter((s) => s < max).concat([max]).map((s) => {
    const o = document.createElement("option");
    o.value = String(s);
    o.textContent = s === max ? `${duration(s)} (the longest on this computer)` : duration(s);
    return o;
  });
  if (!opts.some((o) => Number(o.value) === st.idle_timeout_seconds)) {
    const o = document.createElement("option");
    o.value = String(st.idle_timeout_seconds);
    o.textContent = duration(st.idle_timeout_seconds);
    opts.unshift(o);
  }
  sel.replaceChildren(...opts);
  sel.value = String(st.idle_timeout_seconds);
  $("set-idle-status").textContent = "";
  await settingsStatus(); // availability, with an organisation directory (status.js)
  if (!current()) {
    return;
  }
  showScreen("settings");
}

function idleText(st) {
  $("set-idle").textContent = `The screen locks after ${duration(st.idle_timeout_seconds)} without use, or at once with Lock now (Ctrl+Alt+L). ` +
    `You may choose a shorter time for this computer; the longest is ${duration(st.idle_timeout_max_seconds)}, ` +
    (st.idle_timeout_by_policy ? "set by your organisation." : "set when postern ui starts (--idle-timeout).");
}

async function setIdle(ev) {
  ev.preventDefault();
  $("set-idle-button").disabled = true;
  try {
    const st = await api("PUT", "/api/settings", { idle_timeout_seconds: Number($("set-idle-select").value) });
    $("set-idle-select").value = String(st.idle_timeout_seconds);
    idleText(st);
    $("set-idle-status").textContent = `The screen now locks after ${duration(st.idle_timeout_seconds)} without use`;
  } catch (e) {
    failed(e);
  } finally {
    $("set-idle-button").disabled = false;
  }
}

async function setReceipts() {
  const box = $("set-receipts");
  try {
    const st = await api("PUT", "/api/settings", { read_receipts: box.checked });
    box.checked = st.read_receipts;
    $("settings-status").textContent = st.read_receipts ? "Read receipts are on" : "Read receipts are off";
  } catch (e) {
    box.checked = !box.checked;
    failed(e);
  }
}

// route shows the screen the address names: #/inbox, #/folder/ID,
// #/m/ID, #/compose[?reply=ID|to=NAME|draft=ID], #/contacts, #/devices,
// #/settings.
async function route() {
  if (state.locked) {
    return;
  }
  newNavigation();
  const current = ticket();
  if (currentScreen() === "compose") {
    await flushDraft(); // leaving compose: what was typed is kept
    dropDraft();
    if (!current()) {
      return; // the address changed again meanwhile: that route shows it
    }
  }
  const hash = location.hash.replace(/^#/, "") || "/inbox";
  const [path, query] = hash.split("?");
  const params = new URLSearchParams(query || "");
  try {
    const mod = hooks.routes.find((r) => path.startsWith(r.prefix));
    if (mod) {
      await mod.show(decodeURIComponent(path.slice(mod.prefix.length)), params);
    } else if (path.startsWith("/m/")) {
      await showMessage(decodeURIComponent(path.slice(3)));
    } else if (path.startsWith("/folder/")) {
      await showFolder(decodeURIComponent(path.slice(8)));
    } else if (path === "/compose") {
      await showCompose(params);
    } else if (path === "/settings") {
      await showSettings();
    } else {
      await showFolder("inbox");
    }
  } catch (e) {
    if (current()) {
      failed(e); // not for an address left since
    }
  }
}

async function checkState() {
  try {
    const st = await api("GET", "/api/state");
    if (await takenOver(st)) {
      return;
    }
    if (st.locked) {
      locked();
    } else if (state.locked) {
      await unlocked();
    } else {
      listen();
    }
  } catch (e) {
    if (e.status !== 401 && e.status !== 423) {
      showScreen("signin");
      showError(e);
    }
  }
}

function keys(ev) {
  if (ev.ctrlKey && ev.altKey && (ev.key === "l" || ev.key === "L")) {
    ev.preventDefault();
    if (!state.locked) {
      lockNow();
    }
  }
}

function start() {
  $("unlock-form").addEventListener("submit", unlock);
  $("compose-form").addEventListener("submit", send);
  $("lock-now").addEventListener("click", lockNow);
  $("inbox-more").addEventListener("click", loadOlder);
  $("folder-new-form").addEventListener("submit", createFolder);
  $("folder-edit-form").addEventListener("submit", renameFolder);
  $("folder-delete").addEventListener("click", deleteFolder);
  $("move-form").addEventListener("submit", moveMessage);
  $("compose-discard").addEventListener("click", discardDraft);
  $("set-receipts").addEventListener("change", setReceipts);
  $("set-idle-form").addEventListener("submit", setIdle);
  for (const id of ["compose-to", "compose-subject", "compose-text"]) {
    $(id).addEventListener("input", draftChanged);
  }
  for (const fn of hooks.start) {
    fn();
  }
  hooks.locked = locked;
  hooks.unlocked = unlocked;
  window.addEventListener("hashchange", route);
  document.addEventListener("keydown", keys);
  for (const t of ["keydown", "pointerdown", "wheel"]) {
    document.addEventListener(t, activity, { passive: true });
  }
  checkState();
}

start();
