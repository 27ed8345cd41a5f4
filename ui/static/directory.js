// The organisation directory in compose (GET /api/directory?q=): as the
// person types in the To field, the matching teams, role accounts and
// colleagues of the organisation's directory are listed under it, best
// first. A colleague who is a contact is a button that fills the To field
// with the contact's name; a colleague who is not yet a contact has a
// "Write" button that makes them one without an invitation (POST
// /api/directory/people/{name}/contact) and then fills the To field.

import { $, api, onLock, onStart, state } from "./core.js";
import { composeStatus } from "./status.js";

// delayMS waits for typing to pause before asking.
const delayMS = 150;
const shownMax = 8;

let timer = null;
let asked = ""; // the query of the newest request

function build() {
  const box = document.createElement("div");
  box.id = "directory-suggest";
  box.setAttribute("role", "region");
  box.setAttribute("aria-labelledby", "directory-suggest-title");
  box.hidden = true;
  const title = document.createElement("p");
  title.id = "directory-suggest-title";
  title.className = "note";
  title.textContent = "In your organisation's directory";
  const list = document.createElement("ul");
  list.id = "directory-matches";
  list.setAttribute("aria-live", "polite");
  box.append(title, list);
  $("contact-names").after(box);
  $("compose-to").addEventListener("input", schedule);
  $("compose-form").addEventListener("reset", hide);
}

function hide() {
  clearTimeout(timer);
  asked = "";
  $("directory-suggest").hidden = true;
  $("directory-matches").replaceChildren();
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(lookup, delayMS);
}

async function lookup() {
  const q = $("compose-to").value.trim();
  if (q.length < 2 || state.locked) {
    hide();
    return;
  }
  asked = q;
  let entries;
  try {
    entries = await api("GET", `/api/directory?q=${encodeURIComponent(q)}&limit=${shownMax}`);
  } catch {
    // No directory on this device (404), or none just now: compose
    // works as before.
    if (asked === q) {
      hide();
    }
    return;
  }
  if (asked !== q) {
    return; // typing went on meanwhile
  }
  const items = entries.filter((e) => !e.self).map(item);
  $("directory-matches").replaceChildren(...items);
  $("directory-suggest").hidden = items.length === 0;
}

// describe is what an entry is: its title or kind, and its teams.
function describe(e) {
  const what = e.kind === "person" ? e.title : e.kind === "team" ? "team" : "role account";
  const parts = [what, (e.teams || []).join(", ")].filter((s) => s);
  if (e.kind === "role" && e.holder) {
    parts.push("held by " + e.holder);
  }
  return parts.join(" · ");
}

function item(e) {
  const li = document.createElement("li");
  const about = describe(e);
  if (e.kind === "person" && e.contact) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "secondary";
    b.textContent = e.name + (about ? ` (${about})` : "");
    b.setAttribute("aria-label", `Write to ${e.name}, your contact ${e.contact}` + (about ? `, ${about}` : ""));
    b.addEventListener("click", () => {
      $("compose-to").value = e.contact;
      hide();
      $("compose-subject").focus();
      composeStatus(); // their availability, if they set one
    });
    li.append(b);
    return li;
  }
  const name = document.createElement("span");
  name.textContent = e.name + (about ? ` (${about})` : "");
  const note = document.createElement("span");
  note.className = "note";
  note.textContent = e.kind === "person" ? " — in the directory; not yet a contact" : " — in the directory";
  li.append(name, note);
  if (e.kind === "person") {
    li.append(" ", writeButton(e, note));
  }
  return li;
}

// writeButton makes colleague e a contact and opens compose to them; a
// refusal is said in note.
function writeButton(e, note) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "secondary";
  b.textContent = "Write";
  b.setAttribute("aria-label", `Write to ${e.name}: add them to your contacts from the directory`);
  b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      const res = await api("POST", `/api/directory/people/${encodeURIComponent(e.name)}/contact`);
      $("compose-to").value = res.contact.name;
      hide();
      $("compose-subject").focus();
      composeStatus();
    } catch (err) {
      note.textContent = " — " + (err && err.message ? err.message : "could not add them");
      b.disabled = false;
    }
  });
  return b;
}

onStart(build);
onLock(hide);
