// Role accounts (GET /api/roles, POST /api/roles/{role}/take|leave|holder):
// the organisation's role accounts with who holds each, Take and Leave
// for the staff of a role's team, and for an administrator a holder
// picker (a staff member of the team, or vacant). A colleague's change
// (the role event) redraws the list live. The Roles link shows only on
// a device whose directory lists role accounts. Names are set as
// textContent only.

import { $, api, addScreen, addRoute, announce, cell, currentScreen, failed, onEvent, onLock, onUnlock, showScreen, ticket } from "./core.js";

addScreen("roles");

function holderWords(r) {
  if (!r.holder) {
    return "vacant";
  }
  return r.mine ? "you (you hold this)" : r.holder;
}

function say(text) {
  $("roles-status").textContent = text;
  announce(text);
}

// change posts a change of a role's holder and draws the roles as they
// are now; a refusal is said as the server words it.
async function change(r, path, body, said) {
  try {
    draw(await api("POST", `/api/roles/${encodeURIComponent(r.name)}/${path}`, body));
    say(said);
  } catch (e) {
    $("roles-status").textContent = e.hint ? `${e.message} (${e.hint}).` : e.message;
    failed(e);
    showRoles().catch(() => {}); // show who holds it now
  }
}

function button(text, label, cls, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = cls;
  b.textContent = text;
  b.setAttribute("aria-label", label);
  b.addEventListener("click", onClick);
  return b;
}

// picker is an administrator's holder choice for r: its team's staff,
// or vacant.
function picker(r, n) {
  const form = document.createElement("form");
  form.className = "inline role-holder-form";
  const id = `role-holder-${n}`;
  const label = document.createElement("label");
  label.htmlFor = id;
  label.textContent = `Holder of ${r.name}`;
  label.className = "sr";
  const sel = document.createElement("select");
  sel.id = id;
  sel.name = "staff";
  const vacant = document.createElement("option");
  vacant.value = "";
  vacant.textContent = "Vacant";
  sel.append(vacant);
  for (const s of r.staff || []) {
    const o = document.createElement("option");
    o.value = s.name;
    o.textContent = s.name === "me" ? `${s.shown} (you)` : s.shown;
    o.selected = s.identity === r.holder_identity;
    sel.append(o);
  }
  const set = document.createElement("button");
  set.type = "submit";
  set.className = "secondary role-set";
  set.textContent = "Set holder";
  set.setAttribute("aria-label", `Set holder of ${r.name}`);
  form.append(label, sel, set);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const o = sel.selectedOptions[0];
    const said = sel.value === "" ? `${r.name} is vacant now` : `${r.name} is held by ${o.textContent} now`;
    change(r, "holder", { staff: sel.value }, said);
  });
  return form;
}

function draw(all) {
  const rows = all.roles.map((r, n) => {
    const tr = document.createElement("tr");
    tr.dataset.role = r.name;
    const name = document.createElement("th");
    name.scope = "row";
    name.textContent = r.name;
    const held = cell(holderWords(r), "role-holder");
    const actions = document.createElement("td");
    actions.className = "actions";
    if (r.can_take) {
      actions.append(button("Take", `Take ${r.name}`, "role-take", () => change(r, "take", undefined, `You hold ${r.name} now`)));
    }
    if (r.can_leave) {
      actions.append(button("Leave", `Leave ${r.name}`, "secondary role-leave", () => change(r, "leave", undefined, `You left ${r.name}: it is vacant`)));
    }
    if (all.administrator) {
      actions.append(picker(r, n));
    }
    tr.append(name, cell(r.team), held, actions);
    return tr;
  });
  $("roles-rows").replaceChildren(...rows);
  $("roles-empty").hidden = rows.length > 0;
  $("nav-roles-item").hidden = rows.length === 0;
}

async function showRoles() {
  const current = ticket();
  const all = await api("GET", "/api/roles");
  if (!current()) {
    return; // the page moved on meanwhile
  }
  draw(all);
  showScreen("roles");
}

addRoute("/roles", async () => {
  $("roles-status").textContent = "";
  try {
    await showRoles();
  } catch (e) {
    if (e.status === 404) {
      // No organisation directory on this device: nothing to hold.
      $("roles-rows").replaceChildren();
      $("roles-empty").hidden = false;
      showScreen("roles");
      return;
    }
    throw e;
  }
});

// A change of holder, here in another tab or by a colleague, redraws the
// list; the queue follows with its own events as conversations move.
onEvent("role", () => {
  if (currentScreen() === "roles") {
    showRoles().catch(() => {});
  } else {
    linkShown().catch(() => {});
  }
});

// linkShown shows the Roles link when the directory lists role accounts.
async function linkShown() {
  try {
    const all = await api("GET", "/api/roles");
    $("nav-roles-item").hidden = all.roles.length === 0;
  } catch {
    $("nav-roles-item").hidden = true; // no directory: no roles
  }
}

onUnlock(linkShown);

onLock(() => {
  $("nav-roles-item").hidden = true;
  $("roles-rows").replaceChildren();
  $("roles-status").textContent = "";
});
