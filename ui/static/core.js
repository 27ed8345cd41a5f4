// The shared part of the page of `postern ui`: the API call, the screens,
// and the hooks through which each screen's module joins the page. A
// screen module imports what it needs from here, adds its screen with
// addScreen and its address with addRoute, and is imported by app.js.

export const $ = (id) => document.getElementById(id);

export const screens = ["loading", "signin", "unlock", "inbox", "message", "compose", "contacts", "devices", "settings"];

// bareScreens are shown without the top bar: nothing of the app behind
// them is usable yet.
const bareScreens = ["loading", "signin", "unlock"];

export const state = {
  locked: true,
  messages: [], // the shown folder's, newest first
  contacts: [],
  folders: [], // with their counts (GET /api/folders)
  folder: "inbox", // the folder shown
  drafts: [],
  draft: null, // the compose screen's draft: {id, saving, timer}
  events: null, // the EventSource while unlocked
  lastPing: 0,
};

export class APIError extends Error {
  constructor(status, body) {
    super((body && body.error) || `request failed (${status})`);
    this.status = status;
    this.hint = body && body.hint;
    // restriction: the level, when a contact restricted this person
    // (docs/API.md, "Restrictions"); the message is then its sentence.
    this.restriction = (body && body.restriction) || "";
  }
}

// api calls the local API. 401 shows the sign-in screen, 423 the unlock
// screen; both end the current action.
export async function api(method, path, body) {
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
    hooks.locked();
  }
  if (resp.status === 403 && data && data.restriction) {
    for (const fn of hooks.restricted) {
      fn(data); // restrict.js: the notices follow at once, wherever the send was
    }
  }
  if (!resp.ok) {
    throw new APIError(resp.status, data);
  }
  return data;
}

export function showScreen(name) {
  for (const s of screens) {
    $("screen-" + s).hidden = s !== name;
  }
  const app = !bareScreens.includes(name);
  $("topbar").hidden = !app;
  // On a bare screen nothing of the app shows (devices.css hides the
  // device alert): an alert loaded at unlock appears with the top bar,
  // where it stays, not above the unlock form before moving down.
  document.body.classList.toggle("bare", !app);
  const nav = { message: "inbox", group: "groups", contact: "contacts", queue: "team", figures: "team" }[name] || name;
  for (const a of document.querySelectorAll(".top nav a")) {
    if (a.id === "nav-" + nav) {
      a.setAttribute("aria-current", "page");
    } else {
      a.removeAttribute("aria-current");
    }
  }
  hideError();
}

export function showError(err) {
  const p = $("error");
  p.textContent = err.hint ? `${err.message}. ${err.hint}.` : err.message;
  p.hidden = false;
}

export function hideError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

export function announce(text) {
  $("status").textContent = text;
}

export function formatTime(iso) {
  const d = new Date(iso);
  return isNaN(d) ? "" : d.toLocaleString();
}

// recalledText stands for a message deleted for everyone: who and when.
export function recalledText(m) {
  const who = m.recalled_by === "me" ? "You" : m.recalled_by;
  return `${who} deleted this message on ${formatTime(m.recalled)}`;
}

export function updateTitle() {
  const n = state.folders.reduce((sum, f) => sum + f.unread, 0);
  // The title says only how many; never who or what.
  document.title = n > 0 ? `(${n}) Postern` : "Postern";
}

// Routes overlap: the address can change while a screen still waits for
// the API (a click on the device alert while the unlock's own route loads
// the inbox), and the answers may come in any order. Each route, and the
// lock, starts a new navigation; a screen function takes a ticket when it
// starts and shows its screen only while its ticket is current, so that a
// late answer never covers the screen asked for after it.
const nav = { seq: 0 };

export function newNavigation() {
  nav.seq++;
}

// ticket returns a function that says whether no navigation started since.
export function ticket() {
  const seq = nav.seq;
  return () => seq === nav.seq;
}

// shownConversation is the message the address names (#/m/ID) and the
// contact its conversation is with, for the controls the message screen
// shows per conversation: null on another screen or while locked; peer
// "" for a notice. still() says whether the address still names it.
export async function shownConversation() {
  const m = location.hash.match(/^#\/m\/([^?]+)/);
  if (!m || state.locked) {
    return null;
  }
  const id = decodeURIComponent(m[1]);
  const msg = await api("GET", "/api/messages/" + encodeURIComponent(id));
  let peer = msg.outgoing ? msg.to : msg.from;
  if (msg.notice || !peer || peer === "me") {
    peer = "";
  }
  return { id, msg, peer, still: () => location.hash === "#/m/" + m[1] || location.hash.startsWith("#/m/" + m[1] + "?") };
}

export function currentScreen() {
  return screens.find((s) => !$("screen-" + s).hidden);
}

// failed shows an error of an action, unless the lock or the sign-in
// screen took over.
export function failed(e) {
  if (e.status !== 401 && e.status !== 423) {
    showError(e);
  }
}

export function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) {
    td.className = cls;
  }
  return td;
}

export function duration(seconds) {
  if (seconds % 60 === 0) {
    const m = seconds / 60;
    return m === 1 ? "1 minute" : `${m} minutes`;
  }
  return seconds === 1 ? "1 second" : `${seconds} seconds`;
}


// hooks are what the page's modules add to it. locked is set by app.js.
export const hooks = {
  locked: () => {},
  unlocked: async () => {}, // set by app.js: show the app once unlocked
  state: [], // fn(GET /api/state's answer) => true if it took the page over
  routes: [], // {prefix, show(rest, params)}
  onLock: [], // run when the page locks: drop what the module shows
  onUnlock: [], // run after unlocking, before the first screen
  events: [], // {type, fn(data)}: server-sent events besides the core's
  start: [], // run once when the page loads: attach event listeners
  restricted: [], // fn(error body): a send was refused by a restriction
  contact: [], // async fn(contact): a contact's page is being shown
};

// addScreen makes <section id="screen-NAME"> one of the page's screens;
// a bare one is shown without the top bar.
export function addScreen(name, bare = false) {
  if (!screens.includes(name)) {
    screens.push(name);
  }
  if (bare && !bareScreens.includes(name)) {
    bareScreens.push(name);
  }
}

// onState runs fn with the app's state (GET /api/state, or the answer of
// unlocking) before the page shows the app: fn returns true when it shows
// a screen of its own instead (the first run, the terms of use).
export function onState(fn) {
  hooks.state.push(fn);
}

export async function takenOver(st) {
  for (const fn of hooks.state) {
    if (await fn(st)) {
      return true;
    }
  }
  return false;
}

// addRoute shows a screen for addresses #PREFIX…: show gets the rest of
// the path after the prefix and the query's URLSearchParams.
export function addRoute(prefix, show) {
  hooks.routes.push({ prefix, show });
}

export function onLock(fn) {
  hooks.onLock.push(fn);
}

export function onUnlock(fn) {
  hooks.onUnlock.push(fn);
}

// onEvent runs fn with the parsed data of each server-sent event of type.
export function onEvent(type, fn) {
  hooks.events.push({ type, fn });
}

export function onStart(fn) {
  hooks.start.push(fn);
}

// onRestricted runs fn with the error's body whenever a request is
// refused because a contact restricted this person.
export function onRestricted(fn) {
  hooks.restricted.push(fn);
}

// onContact runs fn(contact) while a contact's page is prepared, before
// it shows; the page waits for it.
export function onContact(fn) {
  hooks.contact.push(fn);
}
