// The care team's queue, for a staff device (or the team's own profile):
// the team's conversations, Unclaimed / Mine / All, urgent first then the
// longest waiting, each with its age; a conversation's page with its
// thread, Claim, Assign to…, Resolve and Block… as its state allows,
// Export for the record, and a reply from the team with files; the team's figures (counts and times,
// no content). A message arriving in the queue refreshes what is shown.
// Names are set as textContent only.

import {
  $, api, APIError, addScreen, addRoute, onLock, onUnlock, onEvent, onStart, showScreen, cell, announce, failed,
  formatTime, recalledText, currentScreen, ticket,
} from "./core.js";
import { formatSize } from "./attach.js";
import { downloadRecord } from "./record.js";

addScreen("team");
addScreen("queue");
addScreen("figures");

const pieceSize = 1 << 20; // bytes per PUT, as the compose screen's uploads

let teams = [];
let team = ""; // the team's name
let filter = "unclaimed";
let shown = null; // the conversation on its page: {item, messages}

const stateWords = { new: "new", claimed: "claimed", assigned: "assigned", resolved: "resolved", archived: "archived" };

// waiting words a conversation's age: "waiting 3 h".
export function waiting(seconds) {
  if (seconds < 60) {
    return "waiting under a minute";
  }
  if (seconds < 3600) {
    return `waiting ${Math.floor(seconds / 60)} min`;
  }
  if (seconds < 48 * 3600) {
    return `waiting ${Math.floor(seconds / 3600)} h`;
  }
  return `waiting ${Math.floor(seconds / 86400)} days`;
}

function ownerWords(it) {
  if (!it.owner) {
    return "nobody";
  }
  const who = it.owner === "me" ? "you" : it.owner;
  return it.assigned_by ? `${who} (assigned by ${it.assigned_by === "me" ? "you" : it.assigned_by})` : who;
}

function ageWords(it) {
  return it.state === "resolved" || it.state === "archived" ? "" : waiting(it.waiting_seconds);
}

async function loadTeams() {
  teams = await api("GET", "/api/teams");
  $("nav-team-item").hidden = teams.length === 0;
  if (!teams.some((t) => t.name === team)) {
    team = teams.length > 0 ? teams[0].name : "";
  }
  $("team-select").replaceChildren(
    ...teams.map((t) => {
      const o = document.createElement("option");
      o.value = t.name;
      o.textContent = t.intake ? `${t.name} (this profile is the team)` : t.name;
      o.selected = t.name === team;
      return o;
    }),
  );
  const t = teams.find((x) => x.name === team);
  $("team-staff").textContent = t ? "Staff: " + t.staff.map((m) => `${m.name === "me" ? "you" : m.shown} (${m.role})`).join(", ") : "";
  $("queue-staff-names").replaceChildren(
    ...(t ? t.staff.filter((m) => m.name !== "me") : []).map((m) => {
      const o = document.createElement("option");
      o.value = m.name;
      return o;
    }),
  );
}

async function showQueue() {
  const current = ticket();
  await loadTeams();
  if (team === "") {
    if (current()) {
      $("team-queue-rows").replaceChildren();
      $("team-queue-empty").hidden = false;
      $("team-queue-empty").textContent = "This device is on no team's staff.";
      showScreen("team");
    }
    return;
  }
  const items = await api("GET", `/api/teams/${encodeURIComponent(team)}/queue?filter=${filter}`);
  if (!current()) {
    return; // the page moved on meanwhile
  }
  for (const b of document.querySelectorAll("#screen-team [data-filter]")) {
    b.setAttribute("aria-pressed", String(b.dataset.filter === filter));
  }
  const rows = items.map((it) => {
    const tr = document.createElement("tr");
    const who = document.createElement("td");
    const a = document.createElement("a");
    a.href = "#/team/q/" + encodeURIComponent(it.id);
    a.textContent = it.outsider || "(unknown)";
    who.append(a);
    if (it.urgent) {
      const u = document.createElement("span");
      u.className = "badge urgent";
      u.textContent = "urgent";
      who.append(" ", u);
    }
    if (it.role) {
      // Addressed to a role account: its holder answers it.
      const r = document.createElement("span");
      r.className = "note queue-role";
      r.textContent = `for ${it.role}`;
      who.append(" ", r);
    }
    tr.append(who, cell(stateWords[it.state] || it.state), cell(ownerWords(it)), cell(ageWords(it)), cell(String(it.messages)));
    return tr;
  });
  $("team-queue-rows").replaceChildren(...rows);
  $("team-queue-empty").textContent = "No conversations here.";
  $("team-queue-empty").hidden = rows.length > 0;
  showScreen("team");
}

function render(q) {
  shown = q;
  const it = q.item;
  $("queue-title").textContent = `Conversation with ${it.outsider}`;
  const age = ageWords(it);
  $("queue-state").textContent =
    `${it.urgent ? "Urgent. " : ""}${it.role ? `For ${it.role}. ` : ""}State: ${stateWords[it.state] || it.state}; owner: ${ownerWords(it)}${age ? `; ${age}` : ""}` +
    (it.reopens ? `; reopened ${it.reopens} times` : "") + ".";
  $("queue-claim").hidden = !it.can_claim;
  $("queue-resolve").hidden = !it.can_assign;
  $("queue-assign-form").hidden = !it.can_assign;
  $("queue-block-button").setAttribute("aria-label", `Block ${it.outsider}`);
  $("queue-unblock-button").setAttribute("aria-label", `Unblock ${it.outsider}`);
  $("queue-thread").replaceChildren(
    ...q.messages.map((m) => {
      const li = document.createElement("li");
      const who = m.outgoing ? "you" : m.from;
      const text = m.recalled ? recalledText(m) : m.text;
      li.textContent = `${who}, ${formatTime(m.time)}${m.urgent ? " (urgent)" : ""}: ${text}`;
      for (const [n, f] of (m.attachments || []).entries()) {
        const a = document.createElement("a");
        a.href = `/api/messages/${encodeURIComponent(m.id)}/files/${n}`;
        a.download = f.name;
        a.textContent = `${f.name} (${formatSize(f.size)})`;
        li.append(" ", a);
      }
      if (m.read_by && m.read_by.length > 0) {
        // Queue receipts: which of the staff read the patient's message.
        const p = document.createElement("span");
        p.className = "queue-read-by";
        p.textContent = ` Read by ${m.read_by.map((r) => (r.by === "me" ? "you" : r.by)).join(", ")}.`;
        li.append(p);
      }
      return li;
    }),
  );
}

async function showItem(id) {
  const current = ticket();
  const q = await api("GET", "/api/queue/" + encodeURIComponent(id));
  if (!current()) {
    return;
  }
  if (!shown || shown.item.id !== id) {
    $("queue-status").textContent = "";
    $("queue-reply-form").reset();
  }
  render(q);
  showScreen("queue");
}

function say(text) {
  $("queue-status").textContent = text;
  announce(text);
}

// act runs a step on the conversation shown and shows it as it is now.
async function act(path, body, said) {
  if (!shown) {
    return;
  }
  try {
    const q = await api("POST", `/api/queue/${encodeURIComponent(shown.item.id)}/${path}`, body);
    render(q);
    say(said);
  } catch (e) {
    $("queue-status").textContent = e.hint ? `${e.message} (${e.hint}).` : e.message;
    failed(e);
    if (e.status === 409) {
      showItem(shown.item.id).catch(() => {}); // show who has it now
    }
  }
}

// exportRecord downloads the conversation's signed record export (the
// team's profile is told, without content) through a link to its bytes,
// which are let go right after.
async function exportRecord() {
  if (!shown) {
    return;
  }
  const button = $("queue-export");
  button.disabled = true;
  say("Exporting…");
  try {
    say(await downloadRecord(`/api/queue/${encodeURIComponent(shown.item.id)}/export`));
  } catch (e) {
    $("queue-status").textContent = `Not exported: ${e.message || e}`;
    failed(e);
  } finally {
    button.disabled = false;
  }
}

// uploadFile sends a file to the local server in pieces and returns the
// upload's ID for the reply.
async function uploadFile(file) {
  const u = await api("POST", "/api/uploads", { name: file.name, size: file.size });
  let off = u.offset;
  while (off < file.size) {
    const resp = await fetch("/api/uploads/" + encodeURIComponent(u.id), {
      method: "PUT",
      credentials: "same-origin",
      headers: { "Content-Type": "application/octet-stream", "Upload-Offset": String(off) },
      body: file.slice(off, Math.min(off + pieceSize, file.size)),
    });
    let data = null;
    try {
      data = await resp.json();
    } catch {
      data = null;
    }
    if (!resp.ok || !data) {
      throw new APIError(resp.status, data);
    }
    off = data.offset;
  }
  return u.id;
}

async function reply(ev) {
  ev.preventDefault();
  if (!shown) {
    return;
  }
  const text = $("queue-reply-text").value;
  const files = [...$("queue-reply-files").files];
  if (text.trim() === "" && files.length === 0) {
    say("Write a reply or add a file.");
    $("queue-reply-text").focus();
    return;
  }
  $("queue-reply-button").disabled = true;
  try {
    say(files.length > 0 ? "Uploading the files" : "Sending");
    const attachments = [];
    for (const f of files) {
      attachments.push(await uploadFile(f));
    }
    await api("POST", `/api/queue/${encodeURIComponent(shown.item.id)}/reply`, { text, attachments });
    $("queue-reply-form").reset();
    say("Reply sent from the team");
    await showItem(shown.item.id);
  } catch (e) {
    $("queue-status").textContent = e.message;
    failed(e);
  } finally {
    $("queue-reply-button").disabled = false;
  }
}

async function block(ev, unblock) {
  ev.preventDefault();
  if (!shown) {
    return;
  }
  const who = shown.item.outsider;
  const body = unblock ? { contact: who } : { contact: who, level: $("queue-block-level").value };
  try {
    await api("POST", `/api/teams/${encodeURIComponent(shown.item.team)}/${unblock ? "unblock" : "block"}`, body);
    say(unblock ? `${who} unblocked: they are asked to opt in again` : `${who} blocked; the team's profile carries it out`);
  } catch (e) {
    $("queue-status").textContent = e.message;
    failed(e);
  }
}

const figureWords = [
  ["new_messages", "Messages received"],
  ["backlog", "Open conversations"],
  ["unclaimed", "Unclaimed conversations"],
  ["reopened", "Reopened conversations"],
  ["delivery_failures", "Delivery failures"],
  ["exports", "Exports"],
];

async function showFigures() {
  const current = ticket();
  await loadTeams();
  if (team === "") {
    location.hash = "#/team";
    return;
  }
  const f = await api("GET", `/api/teams/${encodeURIComponent(team)}/figures`);
  if (!current()) {
    return;
  }
  $("figures-title").textContent = `Figures of ${team}`;
  const rows = [];
  const row = (k, v) => {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = k;
    tr.append(th, cell(v));
    rows.push(tr);
  };
  for (const q of f.queues || []) {
    for (const [k, words] of figureWords) {
      row(words, String(q[k] ?? 0));
    }
    row("Oldest unclaimed", q.unclaimed > 0 ? waiting(Math.round(q.oldest_unclaimed_seconds)) : "none waiting");
    const fr = q.first_response || { count: 0, sum_seconds: 0 };
    row("First responses", String(fr.count));
    row("Mean time to first response", fr.count > 0 ? waiting(Math.round(fr.sum_seconds / fr.count)).replace("waiting ", "") : "none yet");
    const esc = q.escalations || {};
    row("Escalations", `${esc.unclaimed || 0} unclaimed, ${esc.unanswered || 0} unanswered, ${esc.urgent_reminder || 0} urgent reminders`);
  }
  $("figures-rows").replaceChildren(...rows);
  showScreen("figures");
}

addRoute("/team", async (rest) => {
  if (rest === "/figures") {
    await showFigures();
  } else if (rest.startsWith("/q/")) {
    await showItem(rest.slice(3));
  } else {
    await showQueue();
  }
});

onStart(() => {
  for (const b of document.querySelectorAll("#screen-team [data-filter]")) {
    b.addEventListener("click", () => {
      filter = b.dataset.filter;
      showQueue().catch(failed);
    });
  }
  $("team-select").addEventListener("change", () => {
    team = $("team-select").value;
    showQueue().catch(failed);
  });
  $("team-choose-form").addEventListener("submit", (ev) => ev.preventDefault());
  $("queue-claim").addEventListener("click", () => act("claim", undefined, "Claimed: the conversation is yours"));
  $("queue-resolve").addEventListener("click", () => act("resolve", undefined, "Resolved"));
  $("queue-export").addEventListener("click", exportRecord);
  $("queue-assign-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const contact = $("queue-assign-contact").value.trim();
    act("assign", { contact }, `Assigned to ${contact}`).then(() => $("queue-assign-form").reset());
  });
  $("queue-reply-form").addEventListener("submit", reply);
  $("queue-block-form").addEventListener("submit", (ev) => block(ev, false));
  $("queue-unblock-button").addEventListener("click", (ev) => block(ev, true));
});

// Whether this device is on a team's staff decides the navigation's link.
onUnlock(async () => {
  try {
    await loadTeams();
  } catch {
    // The link stays hidden; the queue's address still works.
  }
});

// A message arriving in a team's queue refreshes the queue, or the
// conversation shown.
onEvent("message", (m) => {
  const screen = currentScreen();
  if (screen === "team") {
    showQueue().catch(() => {});
  } else if (screen === "queue" && shown && m.conversation === shown.item.conversation) {
    showItem(shown.item.id).catch(() => {});
  }
});

// A colleague's claim, assignment or resolve (or a reopening) arrived.
onEvent("queue", (ev) => {
  const screen = currentScreen();
  if (screen === "team" && ev.team === team) {
    showQueue().catch(() => {});
  } else if (screen === "queue" && shown && ev.team === shown.item.team) {
    showItem(shown.item.id).catch(() => {});
  }
});

// A role account changed hands: its conversations may move (their own
// queue events follow from a colleague's device; this device's own
// handover writes come as queue events too).
onEvent("role", () => {
  if (currentScreen() === "team") {
    showQueue().catch(() => {});
  } else if (currentScreen() === "queue" && shown && shown.item.role) {
    showItem(shown.item.id).catch(() => {});
  }
});

onLock(() => {
  shown = null;
  teams = [];
  $("nav-team-item").hidden = true;
  for (const id of ["team-queue-rows", "team-select", "queue-thread", "figures-rows", "queue-staff-names"]) {
    $(id).replaceChildren();
  }
  for (const id of ["team-staff", "queue-title", "queue-state", "queue-status"]) {
    $(id).textContent = "";
  }
  $("queue-reply-form").reset();
  $("queue-assign-form").reset();
});
