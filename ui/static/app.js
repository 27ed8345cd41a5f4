// The page of `postern ui`. It keeps nothing in the browser's storage:
// what it shows lives in this page's memory and comes from the API
// (docs/API.md). Text from messages and contacts is only ever set as
// textContent, never parsed as HTML.

const $ = (id) => document.getElementById(id);

const screens = ["loading", "signin", "unlock", "inbox", "message", "compose", "contacts", "devices"];

const state = {
  locked: true,
  messages: [], // newest first
  contacts: [],
  events: null, // the EventSource while unlocked
  lastPing: 0,
};

class APIError extends Error {
  constructor(status, body) {
    super((body && body.error) || `request failed (${status})`);
    this.status = status;
    this.hint = body && body.hint;
  }
}

// api calls the local API. 401 shows the sign-in screen, 423 the unlock
// screen; both end the current action.
async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  let data = null;
  if (resp.status !== 204) {
    try {
      data = await resp.json();
    } catch {
      data = null;
    }
  }
  if (resp.status === 401) {
    showScreen("signin");
  } else if (resp.status === 423) {
    locked();
  }
  if (!resp.ok) {
    throw new APIError(resp.status, data);
  }
  return data;
}

function showScreen(name) {
  for (const s of screens) {
    $("screen-" + s).hidden = s !== name;
  }
  const app = !["loading", "signin", "unlock"].includes(name);
  $("topbar").hidden = !app;
  for (const a of document.querySelectorAll(".top nav a")) {
    if (a.id === "nav-" + name) {
      a.setAttribute("aria-current", "page");
    } else {
      a.removeAttribute("aria-current");
    }
  }
  hideError();
}

function showError(err) {
  const p = $("error");
  p.textContent = err.hint ? `${err.message}. ${err.hint}.` : err.message;
  p.hidden = false;
}

function hideError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function announce(text) {
  $("status").textContent = text;
}

function formatTime(iso) {
  const d = new Date(iso);
  return isNaN(d) ? "" : d.toLocaleString();
}

function updateTitle() {
  const n = state.messages.filter((m) => m.unread).length;
  // The title says only how many; never who or what.
  document.title = n > 0 ? `(${n}) Postern` : "Postern";
}

// --- lock ---

function locked() {
  if (state.events) {
    state.events.close();
    state.events = null;
  }
  state.locked = true;
  state.messages = [];
  state.contacts = [];
  $("inbox-rows").replaceChildren();
  $("contacts-rows").replaceChildren();
  $("devices-rows").replaceChildren();
  for (const id of ["msg-subject", "msg-from", "msg-to", "msg-time", "msg-text", "msg-state", "compose-replying", "me"]) {
    $(id).textContent = "";
  }
  $("msg-files").replaceChildren();
  $("contact-names").replaceChildren();
  $("compose-form").reset();
  $("compose-reply-to").value = "";
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
    await api("POST", "/api/unlock", { passphrase: field.value });
    field.value = "";
    await unlocked();
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
  es.addEventListener("message", (ev) => {
    const m = JSON.parse(ev.data);
    const fresh = upsert(m);
    if (fresh && !m.outgoing) {
      announce("New secure message");
    }
    if (currentScreen() === "inbox") {
      showInRow(m, fresh);
    }
    updateTitle();
  });
  es.addEventListener("missed", () => {
    loadInbox().catch(showError);
  });
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

function upsert(m) {
  const i = state.messages.findIndex((x) => x.id === m.id);
  if (i >= 0) {
    state.messages[i] = m;
    return false;
  }
  state.messages.unshift(m);
  return true;
}

// --- screens ---

function currentScreen() {
  return screens.find((s) => !$("screen-" + s).hidden);
}

// The inbox shows pageSize messages at first and more on request: a
// table of thousands of rows takes the browser seconds to lay out.
const pageSize = 100;

async function loadInbox() {
  const list = await api("GET", `/api/inbox?limit=${pageSize + 1}`);
  state.messages = list.slice(0, pageSize);
  renderInbox();
  $("inbox-more").hidden = list.length <= pageSize;
  updateTitle();
}

async function loadOlder() {
  const last = state.messages[state.messages.length - 1];
  if (!last) {
    return;
  }
  try {
    const list = await api("GET", `/api/inbox?limit=${pageSize + 1}&before=${encodeURIComponent(last.id)}`);
    const page = list.slice(0, pageSize).filter((m) => !state.messages.some((x) => x.id === m.id));
    state.messages.push(...page);
    $("inbox-rows").append(...page.map(inboxRow));
    $("inbox-more").hidden = list.length <= pageSize;
    announce(`${page.length} older messages shown`);
  } catch (e) {
    if (e.status !== 401 && e.status !== 423) {
      showError(e);
    }
  }
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) {
    td.className = cls;
  }
  return td;
}

function inboxRow(m) {
  const tr = document.createElement("tr");
  tr.dataset.id = m.id;
  if (m.unread) {
    tr.className = "unread";
  }
  tr.append(cell(m.outgoing ? `To ${m.to}` : m.from));
  const td = document.createElement("td");
  const a = document.createElement("a");
  a.href = "#/m/" + encodeURIComponent(m.id);
  a.textContent = m.subject || firstLine(m.text) || "(no subject)";
  if (m.unread) {
    const s = document.createElement("span");
    s.className = "sr";
    s.textContent = "Unread: ";
    td.append(s);
  }
  td.append(a);
  tr.append(td, cell(formatTime(m.time), "time"));
  return tr;
}

function renderInbox() {
  const rows = state.messages.map(inboxRow);
  $("inbox-rows").replaceChildren(...rows);
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

async function showMessage(id) {
  const m = await api("GET", "/api/messages/" + encodeURIComponent(id));
  upsert(m);
  updateTitle();
  $("msg-subject").textContent = m.subject || "(no subject)";
  $("msg-from").textContent = m.outgoing ? "me" : m.from;
  $("msg-to").textContent = m.outgoing ? m.to : "me";
  $("msg-time").textContent = formatTime(m.time);
  $("msg-text").textContent = m.text;
  const stateNote = $("msg-state");
  stateNote.hidden = !(m.queued || m.send_error);
  stateNote.textContent = m.send_error ? `Not sent: ${m.send_error}` : m.queued ? "Waiting to be sent" : "";
  const files = $("msg-files");
  files.replaceChildren(
    ...(m.attachments || []).map((f) => {
      const li = document.createElement("li");
      li.textContent = `${f.name} (${f.size} bytes)`;
      return li;
    }),
  );
  files.hidden = !(m.attachments && m.attachments.length);
  const reply = $("msg-reply");
  reply.hidden = m.notice;
  reply.href = "#/compose?reply=" + encodeURIComponent(m.id);
  showScreen("message");
  $("msg-subject").setAttribute("tabindex", "-1");
  $("msg-subject").focus();
}

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
  await loadContacts();
  const form = $("compose-form");
  form.reset();
  $("compose-error").hidden = true;
  const replying = $("compose-replying");
  replying.hidden = true;
  const replyID = params.get("reply");
  if (replyID) {
    const m = await api("GET", "/api/messages/" + encodeURIComponent(replyID));
    $("compose-to").value = m.outgoing ? m.to : m.from;
    const subj = m.subject || "";
    $("compose-subject").value = subj && !/^re:/i.test(subj) ? "Re: " + subj : subj;
    $("compose-reply-to").value = m.id;
    replying.textContent = `Replying to ${m.outgoing ? "your message to " + m.to : m.from}`;
    replying.hidden = false;
  } else if (params.get("to")) {
    $("compose-to").value = params.get("to");
  }
  showScreen("compose");
  (replyID ? $("compose-text") : $("compose-to")).focus();
}

async function send(ev) {
  ev.preventDefault();
  const err = $("compose-error");
  err.hidden = true;
  const body = {
    to: $("compose-to").value.trim(),
    subject: $("compose-subject").value,
    text: $("compose-text").value,
  };
  const replyTo = $("compose-reply-to").value;
  if (replyTo) {
    body.reply_to = replyTo;
  }
  $("compose-send").disabled = true;
  try {
    const res = await api("POST", "/api/send", body);
    upsert(res.message);
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

async function showContacts() {
  await loadContacts();
  const rows = state.contacts.map((c) => {
    const tr = document.createElement("tr");
    tr.append(
      cell(c.blocked ? `${c.name} (blocked)` : c.name),
      cell(c.safety_number, "mono"),
      cell(c.verification === "verified" ? "Yes" : c.verification === "changed" ? "Changed: compare again" : "No"),
    );
    return tr;
  });
  $("contacts-rows").replaceChildren(...rows);
  $("contacts-empty").hidden = rows.length > 0;
  $("contacts-table").hidden = rows.length === 0;
  showScreen("contacts");
}

async function showDevices() {
  showScreen("devices");
  const ds = await api("GET", "/api/devices");
  const rows = ds.map((d) => {
    const tr = document.createElement("tr");
    const name = (d.name || "(unnamed)") + (d.this ? " (this device)" : "");
    tr.append(cell(name), cell(d.id, "mono"), cell(formatTime(d.linked), "time"));
    return tr;
  });
  $("devices-rows").replaceChildren(...rows);
}

// route shows the screen the address names: #/inbox, #/m/ID,
// #/compose[?reply=ID|to=NAME], #/contacts, #/devices.
async function route() {
  if (state.locked) {
    return;
  }
  const hash = location.hash.replace(/^#/, "") || "/inbox";
  const [path, query] = hash.split("?");
  const params = new URLSearchParams(query || "");
  try {
    if (path.startsWith("/m/")) {
      await showMessage(decodeURIComponent(path.slice(3)));
    } else if (path === "/compose") {
      await showCompose(params);
    } else if (path === "/contacts") {
      await showContacts();
    } else if (path === "/devices") {
      await showDevices();
    } else {
      await loadInbox();
      showScreen("inbox");
    }
  } catch (e) {
    if (e.status !== 401 && e.status !== 423) {
      showError(e);
    }
  }
}

async function checkState() {
  try {
    const st = await api("GET", "/api/state");
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
  window.addEventListener("hashchange", route);
  document.addEventListener("keydown", keys);
  for (const t of ["keydown", "pointerdown", "wheel"]) {
    document.addEventListener(t, activity, { passive: true });
  }
  checkState();
}

start();
