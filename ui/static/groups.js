// The groups' screens: the list with this person's role in each and the
// members, making a group; a group's page with its members and their
// roles (a delegate shown as "ASSISTANT for CLINICIAN"), adding and
// removing members (admins), writing to the group (not observers) and its
// newest messages. Names are set as textContent only.

import {
  $, api, addScreen, addRoute, onLock, onEvent, onStart, showScreen, cell, announce, failed, formatTime, recalledText,
  currentScreen, ticket,
} from "./core.js";

addScreen("groups");
addScreen("group");

const roleWords = { admin: "admin", member: "member", observer: "observer (reads only)", delegate: "delegate" };

let shown = null; // the group on its page

function showErr(id, e) {
  const el = $(id);
  el.textContent = e.hint ? `${e.message}. ${e.hint}.` : e.message;
  el.hidden = false;
}

async function showList() {
  const current = ticket();
  const gs = await api("GET", "/api/groups");
  if (!current()) {
    return; // the page moved on meanwhile
  }
  const rows = gs.map((g) => {
    const tr = document.createElement("tr");
    const name = document.createElement("td");
    const a = document.createElement("a");
    a.href = "#/groups/" + encodeURIComponent(g.id);
    a.textContent = g.name;
    name.append(a);
    if (g.removed) {
      name.append(" (you were removed)");
    }
    tr.append(name, cell(roleWords[g.role] || g.role), cell(g.members.map((m) => m.shown).join(", ")));
    return tr;
  });
  $("groups-rows").replaceChildren(...rows);
  $("groups-empty").hidden = rows.length > 0;
  $("group-new-error").hidden = true;
  showScreen("groups");
}

async function create(ev) {
  ev.preventDefault();
  $("group-new-error").hidden = true;
  const members = $("group-new-members").value.split(",").map((s) => s.trim()).filter((s) => s);
  $("group-new-button").disabled = true;
  try {
    const g = await api("POST", "/api/groups", { name: $("group-new-name").value, members });
    $("group-new-form").reset();
    announce(`Group ${g.name} made`);
    location.hash = "#/groups/" + encodeURIComponent(g.id);
  } catch (e) {
    if (e.status !== 401 && e.status !== 423) {
      showErr("group-new-error", e);
    }
  } finally {
    $("group-new-button").disabled = false;
  }
}

function render(g) {
  shown = g;
  $("group-name").textContent = g.name;
  $("group-role").textContent = g.removed
    ? "You were removed from this group: nothing is sent or read any more."
    : `You are ${g.role === "admin" ? "an admin" : g.role === "observer" ? "an observer: you read, and cannot write" : `a ${g.role}`} in this group.`;
  const admin = g.role === "admin" && !g.removed;
  $("group-members").replaceChildren(
    ...g.members.map((m) => {
      const tr = document.createElement("tr");
      const actions = document.createElement("td");
      if (m.name !== "me" && !m.contact && !g.removed) {
        // Known only through the group: it can become a contact
        // (protocol/SPEC.md section 15.10), under a name chosen below.
        const b = document.createElement("button");
        b.type = "button";
        b.className = "secondary";
        b.textContent = "Make contact";
        b.setAttribute("aria-label", `Make contact with ${m.shown}`);
        b.addEventListener("click", () => askContact(m));
        actions.append(b);
      }
      if (admin && m.name !== "me") {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "secondary";
        b.textContent = "Remove";
        b.setAttribute("aria-label", `Remove ${m.shown}`);
        b.addEventListener("click", () => remove(m.name));
        actions.append(b);
      }
      tr.append(cell(m.name === "me" ? "you" : m.contact ? m.shown : `${m.shown} (not a contact)`), cell(roleWords[m.role] || m.role), cell(`${m.joined} of ${m.devices}`), actions);
      return tr;
    }),
  );
  $("group-add-form").hidden = !admin;
  $("group-add-help").hidden = !admin;
  const canWrite = !g.removed && g.role !== "observer";
  $("group-send-form").hidden = !canWrite;
  $("group-write-heading").hidden = !canWrite;
  const msgs = g.messages || [];
  $("group-messages").replaceChildren(
    ...msgs.map((m) => {
      const li = document.createElement("li");
      const who = m.outgoing ? "me" : m.from;
      const text = m.recalled ? recalledText(m) : m.text;
      li.textContent = `${who}, ${formatTime(m.time)}${m.urgent ? " (urgent)" : ""}: ${text}`;
      return li;
    }),
  );
  $("group-messages-empty").hidden = msgs.length > 0;
}

async function showGroup(id) {
  const current = ticket();
  const g = await api("GET", "/api/groups/" + encodeURIComponent(id));
  if (!current()) {
    return; // the page moved on meanwhile
  }
  if (!shown || shown.id !== id) {
    $("group-status").textContent = "";
    hideContactForm();
  }
  render(g);
  showScreen("group");
}

async function add(ev) {
  ev.preventDefault();
  if (!shown) {
    return;
  }
  const body = { contact: $("group-add-contact").value.trim(), role: $("group-add-role").value, for: $("group-add-for").value.trim() };
  if (body.role !== "delegate") {
    body.for = "";
  }
  try {
    const g = await api("POST", `/api/groups/${encodeURIComponent(shown.id)}/members`, body);
    $("group-add-form").reset();
    render({ ...g, messages: shown.messages });
    const said = `${body.contact} added as ${body.role}`;
    $("group-status").textContent = said;
    announce(said);
  } catch (e) {
    $("group-status").textContent = e.message;
    failed(e);
  }
}

async function remove(name) {
  if (!shown) {
    return;
  }
  try {
    const g = await api("DELETE", `/api/groups/${encodeURIComponent(shown.id)}/members/${encodeURIComponent(name)}`);
    render({ ...g, messages: shown.messages });
    const said = `${name} removed; the group's keys changed`;
    $("group-status").textContent = said;
    announce(said);
  } catch (e) {
    $("group-status").textContent = e.message;
    failed(e);
  }
}

// --- making a member known only through the group a contact ---

let making = null; // the member whose form is shown

function askContact(m) {
  making = m;
  $("group-contact-heading").textContent = `Make ${m.shown} a contact`;
  $("group-contact-what").textContent = `You know ${m.shown} only through this group. As a contact they are in your contact list and you can write to them directly; they read it once they have made you a contact too. Compare safety numbers with them to verify who they are.`;
  $("group-contact-name").value = m.name;
  $("group-contact-form").hidden = false;
  $("group-contact-name").focus();
}

function hideContactForm() {
  making = null;
  $("group-contact-form").hidden = true;
  $("group-contact-form").reset();
}

async function makeContact(ev) {
  ev.preventDefault();
  if (!shown || !making) {
    return;
  }
  const m = making;
  $("group-contact-button").disabled = true;
  try {
    const res = await api("POST", `/api/groups/${encodeURIComponent(shown.id)}/members/${encodeURIComponent(m.name)}/contact`,
      { name: $("group-contact-name").value.trim() });
    hideContactForm();
    render({ ...res.group, messages: shown.messages });
    const said = `${res.contact.name} is now a contact`;
    $("group-status").textContent = said;
    announce(said);
  } catch (e) {
    $("group-status").textContent = e.hint ? `${e.message} (${e.hint})` : e.message;
    failed(e);
  } finally {
    $("group-contact-button").disabled = false;
  }
}

async function send(ev) {
  ev.preventDefault();
  if (!shown) {
    return;
  }
  $("group-send-button").disabled = true;
  try {
    await api("POST", `/api/groups/${encodeURIComponent(shown.id)}/send`, {
      text: $("group-send-text").value,
      urgent: $("group-send-urgent").checked,
    });
    $("group-send-form").reset();
    $("group-status").textContent = "Sent to the group";
    announce("Sent to the group");
    await showGroup(shown.id);
  } catch (e) {
    $("group-status").textContent = e.message;
    failed(e);
  } finally {
    $("group-send-button").disabled = false;
  }
}

addRoute("/groups", async (rest) => {
  const id = rest.replace(/^\//, "");
  if (id === "") {
    await showList();
  } else {
    await showGroup(id);
  }
});

onStart(() => {
  $("group-new-form").addEventListener("submit", create);
  $("group-add-form").addEventListener("submit", add);
  $("group-send-form").addEventListener("submit", send);
  $("group-contact-form").addEventListener("submit", makeContact);
  $("group-contact-cancel").addEventListener("click", hideContactForm);
});
// A message arriving in the group shown refreshes its page.
onEvent("message", (m) => {
  if (shown && currentScreen() === "group" && m.conversation && m.to === shown.name) {
    showGroup(shown.id).catch(() => {});
  }
});
onLock(() => {
  shown = null;
  hideContactForm();
  $("group-contact-heading").textContent = "";
  $("group-contact-what").textContent = "";
  for (const id of ["groups-rows", "group-members", "group-messages"]) {
    $(id).replaceChildren();
  }
  for (const id of ["group-name", "group-role", "group-status"]) {
    $(id).textContent = "";
  }
  $("group-new-form").reset();
  $("group-send-form").reset();
});
