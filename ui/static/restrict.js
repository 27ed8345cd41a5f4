// Restrictions (docs/API.md, "Restrictions"). The organisation's side:
// a contact's page restricts them at one of three levels, after a
// confirmation that says what it does, shows the restriction and
// restores access. The restricted person's side: a refused send shows
// the level's sentence in the compose area, the conversation and the
// contact's page say so while they are opted out, compose refuses to
// send to that contact, and the opt-in screen shows the terms of use,
// which they must accept before writing again. Names and sentences are
// set as textContent only.

import {
  $, api, addScreen, addRoute, announce, currentScreen, failed, formatTime, onContact, onLock, onRestricted, onStart,
  showScreen, shownConversation, ticket,
} from "./core.js";

addScreen("optin");

const levelWords = {
  service: "from the whole service",
  new: "from sending new messages",
  replies: "from replying",
};

// restrictedBy: the contacts that restricted this person, to which it
// has not opted in again and which refuse what it writes now (a team's
// level 2 or 3 stops only new conversations, or only replies in answered
// ones), name → level (GET /api/contacts).
let restrictedBy = new Map();

async function loadRestricted() {
  const cs = await api("GET", "/api/contacts");
  restrictedBy = new Map(cs.filter((c) => c.restricted && c.sends_refused).map((c) => [c.name, c.restricted]));
}

function restrictionPath(name) {
  return "/api/contacts/" + encodeURIComponent(name) + "/restriction";
}

function optInHref(name) {
  return "#/optin/" + encodeURIComponent(name);
}

function since(r) {
  return r.restricted_at ? ` on ${formatTime(r.restricted_at)}` : "";
}

function nextSteps(name) {
  return `Postern sends nothing to ${name} until you opt in again. If ${name}'s Secure Messaging coordinator told you that your access is restored, read the terms of use and accept them to write to ${name} again.`;
}

function optInLink(a, name) {
  a.href = optInHref(name);
  a.textContent = `Read the terms of use and opt in again to write to ${name}`;
}

// --- compose: nothing is sent to a contact that restricted this person ---

const compose = { shownFor: "" }; // the contact the compose notice is for

async function syncCompose() {
  const to = $("compose-to").value.trim();
  const box = $("compose-restricted");
  const send = $("compose-send");
  if (!restrictedBy.has(to)) {
    if (compose.shownFor) {
      compose.shownFor = "";
      box.hidden = true;
      send.disabled = false;
      send.removeAttribute("aria-describedby");
      $("compose-to").removeAttribute("aria-describedby");
    }
    return;
  }
  const r = await api("GET", restrictionPath(to));
  if ($("compose-to").value.trim() !== to) {
    return; // another contact was typed meanwhile
  }
  if (!r.restricted || !r.sends_refused) {
    restrictedBy.delete(to);
    await syncCompose();
    return;
  }
  // After a refused send the error above says the sentence already.
  const err = $("compose-error");
  $("compose-restricted-sentence").textContent = r.sentence;
  $("compose-restricted-sentence").hidden = !err.hidden && err.textContent === r.sentence;
  $("compose-restricted-next").textContent = nextSteps(to);
  optInLink($("compose-optin"), to);
  compose.shownFor = to;
  box.hidden = false;
  send.disabled = true;
  send.setAttribute("aria-describedby", "compose-restricted-next");
  // Read with the recipient's field, where the focus is.
  $("compose-to").setAttribute("aria-describedby",
    $("compose-restricted-sentence").hidden ? "compose-restricted-next" : "compose-restricted-sentence compose-restricted-next");
}

async function composeShown() {
  try {
    await loadRestricted();
    await syncCompose();
  } catch (e) {
    failed(e);
  }
}

// --- the conversation: a notice while opted out ---

async function refreshNotice() {
  const box = $("msg-restricted");
  try {
    const c = await shownConversation();
    if (!c || !c.peer) {
      box.hidden = true;
      return;
    }
    const r = await api("GET", restrictionPath(c.peer));
    if (!c.still()) {
      return; // the page moved on meanwhile
    }
    if (!r.restricted) {
      box.hidden = true;
      return;
    }
    $("msg-restricted-heading").textContent = `${c.peer} restricted your access${since(r)}`;
    $("msg-restricted-sentence").textContent = r.sentence;
    $("msg-restricted-next").textContent = nextSteps(c.peer);
    optInLink($("msg-optin"), c.peer);
    box.hidden = false;
  } catch (e) {
    box.hidden = true;
    if (e.status !== 404) {
      failed(e);
    }
  }
}

// --- the contact's page: restricting them, or their restriction of you ---

const contact = { name: "", r: null, level: "" }; // level: awaiting confirmation

function renderContact(r) {
  const name = r.contact;
  contact.name = name;
  contact.r = r;
  const mine = $("restricted-me");
  if (r.restricted) {
    $("restricted-me-heading").textContent = `${name} restricted your access${since(r)}`;
    $("restricted-me-sentence").textContent = r.sentence;
    optInLink($("restricted-me-optin"), name);
  }
  mine.hidden = !r.restricted;

  $("restrict-state").textContent = r.by_me
    ? `You restricted ${name} ${levelWords[r.by_me]}. The relay refuses what ${name} sends you; what you send still reaches ${name}.`
    : `${name} can write to you.`;
  $("restrict-state").className = r.by_me ? "restricted" : "";
  $("restrict-legend").textContent = r.by_me ? `Restrict ${name} at another level` : `Restrict ${name}`;
  $("restrict-help").textContent = `The relay refuses what ${name} sends you: from the whole service, everything; if you are a team, from new messages a new conversation, and from replying the replies in a conversation your staff answered (to anyone else, every level refuses everything). ${name}'s Postern sends nothing more of what was refused until you restore access and ${name} accepts the terms of use again. What you send still reaches ${name}. The levels also differ in what ${name} is told:`;
  for (const l of Object.keys(levelWords)) {
    $("restrict-" + l).checked = l === r.by_me;
  }
  $("restrict-button").textContent = r.by_me ? "Change the restriction…" : "Restrict…";
  const restore = $("restrict-restore");
  restore.textContent = `Restore ${name}'s access`;
  restore.hidden = !r.by_me;
  hideConfirm();
  $("restrict-error").hidden = true;
  // Someone who restricted this person is their organisation: the page
  // offers opting in, not restricting them back.
  $("restrict").hidden = Boolean(r.restricted) && !r.by_me;
}

async function contactShown(c) {
  $("restrict-status").textContent = "";
  renderContact(await api("GET", restrictionPath(c.name)));
}

function hideConfirm() {
  contact.level = "";
  $("restrict-confirm").hidden = true;
  for (const id of ["restrict-question", "restrict-what", "restrict-told-intro", "restrict-told"]) {
    $(id).textContent = "";
  }
}

function showErr(e) {
  if (e.status === 401 || e.status === 423) {
    return;
  }
  const el = $("restrict-error");
  el.textContent = e.hint ? `${e.message}. ${e.hint}.` : e.message;
  el.hidden = false;
}

function askRestrict(ev) {
  ev.preventDefault();
  const r = contact.r;
  const picked = document.querySelector('#restrict-form input[name="level"]:checked');
  $("restrict-error").hidden = true;
  if (!r || !picked) {
    showErr(new Error("Choose how far to restrict them first"));
    $("restrict-service").focus();
    return;
  }
  const name = r.contact;
  const level = picked.value;
  if (level === r.by_me) {
    $("restrict-status").textContent = `${name} is restricted ${levelWords[level]} already.`;
    return;
  }
  contact.level = level;
  $("restrict-question").textContent = `Restrict ${name} ${levelWords[level]}?`;
  $("restrict-what").textContent = `The relay will refuse every message ${name} sends you, and ${name}'s Postern stops sending until you restore access and ${name} accepts the terms of use again. What you send still reaches ${name}.`;
  $("restrict-told-intro").textContent = `When ${name} next writes to you, ${name} is told:`;
  $("restrict-told").textContent = r.sentences[level];
  $("restrict-yes").textContent = `Restrict ${name}`;
  $("restrict-confirm").hidden = false;
  $("restrict-no").focus(); // the safe choice first: Tab reaches the restriction
}

async function change(method, body, button) {
  const name = contact.name;
  button.disabled = true;
  try {
    const r = await api(method, restrictionPath(name), body);
    if (contact.name !== name) {
      return; // another contact's page meanwhile
    }
    renderContact(r);
    $("restrict-status").textContent = r.message;
    announce(r.message);
  } catch (e) {
    showErr(e);
  } finally {
    button.disabled = false;
  }
}

async function restrict() {
  const level = contact.level;
  if (!level) {
    return;
  }
  await change("PUT", { level }, $("restrict-yes"));
  $("restrict-button").focus();
}

function cancelRestrict() {
  hideConfirm();
  $("restrict-button").focus();
}

async function restore() {
  await change("DELETE", undefined, $("restrict-restore"));
  $("restrict-button").focus();
}

// --- the opt-in screen ---

const optin = { name: "", version: "" };

function termsNodes(t) {
  const parts = [];
  for (const sec of t.sections) {
    if (sec.heading) {
      const h = document.createElement("h3");
      h.textContent = sec.heading;
      parts.push(h);
    }
    for (const b of sec.blocks) {
      if (b.items) {
        const ul = document.createElement("ul");
        for (const it of b.items) {
          const li = document.createElement("li");
          li.textContent = it;
          ul.append(li);
        }
        parts.push(ul);
      } else {
        const p = document.createElement("p");
        p.textContent = b.text;
        parts.push(p);
      }
    }
  }
  return parts;
}

async function showOptIn(name) {
  const current = ticket();
  const [r, t] = await Promise.all([api("GET", restrictionPath(name)), api("GET", "/api/terms")]);
  optin.name = r.contact;
  optin.version = t.version;
  $("optin-error").hidden = true;
  $("optin-status").textContent = "";
  $("optin-form").reset();
  if (r.restricted) {
    $("optin-heading").textContent = `Write to ${name} again`;
    $("optin-sentence").textContent = r.sentence;
    $("optin-intro").textContent = `${name} restricted your access${since(r)}, and Postern has sent nothing to ${name} since. Opt in again only if ${name}'s Secure Messaging coordinator told you that your access is restored: read the terms of use below and accept them.`;
    $("optin-terms-title").textContent = t.title;
    $("optin-terms-version").textContent = `Version ${t.version}`;
    $("optin-terms-body").replaceChildren(...termsNodes(t));
    $("optin-accept-label").textContent = `I have read the terms of use, version ${t.version}, and I accept them`;
    $("optin-after").textContent = "Postern records that you accepted them, with the date and the version. If your access was not restored, your next message is refused again.";
  } else {
    $("optin-heading").textContent = `You can write to ${name}`;
    $("optin-none").textContent = `${name} has not restricted your access: there is nothing to opt in to.`;
  }
  $("optin-restricted").hidden = !r.restricted;
  $("optin-none").hidden = Boolean(r.restricted);
  if (!current()) {
    return;
  }
  showScreen("optin");
  $("optin-heading").focus();
}

async function submitOptIn(ev) {
  ev.preventDefault();
  const err = $("optin-error");
  err.hidden = true;
  if (!$("optin-accept").checked) {
    err.textContent = "To write again, tick the box to accept the terms of use.";
    err.hidden = false;
    $("optin-accept").focus();
    return;
  }
  const name = optin.name;
  $("optin-button").disabled = true;
  try {
    const r = await api("POST", "/api/contacts/" + encodeURIComponent(name) + "/optin", { accept: true, terms_version: optin.version });
    restrictedBy.delete(name);
    announce(r.message);
    location.hash = "#/compose?to=" + encodeURIComponent(name);
  } catch (e) {
    if (e.status !== 401 && e.status !== 423) {
      err.textContent = e.hint ? `${e.message}. ${e.hint}.` : e.message;
      err.hidden = false;
    }
  } finally {
    $("optin-button").disabled = false;
  }
}

addRoute("/optin/", (rest) => showOptIn(rest));

onContact(contactShown);

// A refused send: the notices of the screen shown follow.
onRestricted(() => {
  const screen = currentScreen();
  if (screen === "compose") {
    composeShown();
  } else if (screen === "message") {
    refreshNotice();
  } else {
    loadRestricted().catch(() => {});
  }
});

onLock(() => {
  restrictedBy = new Map();
  compose.shownFor = "";
  $("compose-restricted").hidden = true;
  $("compose-send").disabled = false;
  $("compose-send").removeAttribute("aria-describedby");
  $("compose-to").removeAttribute("aria-describedby");
  for (const id of ["compose-restricted-sentence", "compose-restricted-next", "compose-optin",
    "msg-restricted-heading", "msg-restricted-sentence", "msg-restricted-next", "msg-optin",
    "restricted-me-heading", "restricted-me-sentence", "restricted-me-optin", "restrict-state", "restrict-status",
    "optin-heading", "optin-sentence", "optin-intro", "optin-terms-title", "optin-terms-version", "optin-none", "optin-status"]) {
    $(id).textContent = "";
  }
  $("msg-restricted").hidden = true;
  $("restricted-me").hidden = true;
  $("restrict").hidden = true;
  hideConfirm();
  $("optin-terms-body").replaceChildren();
  $("optin-form").reset();
  contact.name = "";
  contact.r = null;
  optin.name = "";
});

onStart(() => {
  for (const t of ["input", "change"]) {
    $("compose-to").addEventListener(t, () => syncCompose().catch(failed));
  }
  // The screens are shown by app.js; their notices follow when they
  // appear, and when the address moves from one message to another.
  const seen = { compose: false, message: false };
  new MutationObserver(() => {
    const compose = !$("screen-compose").hidden;
    const message = !$("screen-message").hidden;
    if (compose && !seen.compose) {
      composeShown();
    }
    if (message && !seen.message) {
      refreshNotice();
    }
    seen.compose = compose;
    seen.message = message;
  }).observe($("main"), { subtree: true, attributes: true, attributeFilter: ["hidden"] });
  window.addEventListener("hashchange", () => {
    if (location.hash.startsWith("#/m/") && !$("screen-message").hidden) {
      refreshNotice();
    }
  });
  $("restrict-form").addEventListener("submit", askRestrict);
  $("restrict-yes").addEventListener("click", restrict);
  $("restrict-no").addEventListener("click", cancelRestrict);
  $("restrict-confirm").addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") {
      cancelRestrict();
    }
  });
  $("restrict-restore").addEventListener("click", restore);
  $("optin-form").addEventListener("submit", submitOptIn);
});
