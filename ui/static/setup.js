// The first run (a home without an identity: the terms of use, then
// create, link or restore) and the terms of use later (a newer version,
// or accepted again after withdrawing; withdrawing from Settings). The
// API is in docs/API.md, "First run and terms of use".

import { $, api, hooks, addScreen, onState, onStart, onUnlock, onLock, showScreen, announce, formatTime } from "./core.js";

addScreen("terms", true);
addScreen("declined", true);
addScreen("setup", true);

const setup = {
  mode: "setup", // "setup": before an identity; "again": unlocked, terms needed
  info: null, // GET /api/setup
  terms: null, // GET /api/terms
  way: "", // create, link, restore
};

const ways = {
  create: { heading: "Create a new identity", submit: "Create", fields: ["setup-create-fields"] },
  link: { heading: "Link this computer to your other device", submit: "Link this computer", fields: ["setup-link-fields", "setup-device-fields"] },
  restore: { heading: "Restore from a backup", submit: "Restore", fields: ["setup-restore-fields", "setup-device-fields"] },
};

onState(async (st) => {
  if (st.setup) {
    await showTerms("setup");
    return true;
  }
  if (st.terms_needed) {
    await showTerms("again");
    return true;
  }
  return false;
});

function focusHeading(id) {
  const h = $(id);
  h.focus();
}

// toInbox makes the inbox the screen that unlocking shows (not the one
// the address named before, such as Settings where the terms were
// withdrawn).
function toInbox() {
  history.replaceState(null, "", "#/inbox");
}

// --- terms ---

async function loadTerms() {
  setup.terms = await api("GET", "/api/terms");
  const t = setup.terms;
  $("terms-title").textContent = t.title;
  $("terms-version").textContent = `Version ${t.version}`;
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
  $("terms-body").replaceChildren(...parts);
}

async function showTerms(mode) {
  setup.mode = mode;
  await loadTerms();
  const again = mode === "again";
  const older = again && setup.terms.acceptance && !setup.terms.acceptance.withdrawn;
  $("terms-heading").textContent = again ? (older ? "The terms of use changed" : "Accept the terms of use to go on") : "Welcome to Postern";
  $("terms-intro").textContent = again
    ? "Postern shows no messages and receives none on this computer until you accept the terms of use below."
    : "Postern is your organisation's secure messaging service. Before it is set up on this computer, read its terms of use. Nothing is created and nothing is sent until you accept them.";
  $("terms-error").hidden = true;
  showScreen("terms");
  focusHeading("terms-heading");
}

async function accept() {
  if (setup.mode === "setup") {
    await showChoose();
    return;
  }
  $("terms-accept").disabled = true;
  try {
    await api("POST", "/api/terms/accept", { version: setup.terms.version });
    announce("Terms of use accepted");
    toInbox();
    await hooks.unlocked();
  } catch (e) {
    if (e.status !== 401 && e.status !== 423) {
      $("terms-error").textContent = e.hint ? `${e.message}. ${e.hint}.` : e.message;
      $("terms-error").hidden = false;
    }
  } finally {
    $("terms-accept").disabled = false;
  }
}

async function decline() {
  if (setup.mode === "setup") {
    showDeclined("You declined the terms of use",
      "Postern was not set up: nothing was created on this computer and nothing was sent over the network.",
      "You may close this page. To use Postern, read the terms again and accept them.",
      "Read the terms again");
    return;
  }
  // Declined on a set-up computer: it locks, and stays unused until the
  // terms are accepted after unlocking.
  await api("POST", "/api/lock").catch(() => {});
  hooks.locked();
  showDeclined("You declined the terms of use",
    "Postern is locked and receives no messages on this computer.",
    "To use it again, unlock it and accept the terms.",
    "Unlock");
}

function showDeclined(heading, text, next, button) {
  $("declined-heading").textContent = heading;
  $("declined-text").textContent = text;
  $("declined-next").textContent = next;
  $("declined-again").textContent = button;
  showScreen("declined");
  focusHeading("declined-heading");
}

async function again() {
  if (setup.mode === "setup") {
    await showTerms("setup");
  } else {
    hooks.locked(); // the unlock screen; the terms follow the unlock
  }
}

// --- create, link, restore ---

async function showChoose() {
  setup.info = await api("GET", "/api/setup");
  if (!setup.info.setup) {
    // Set up meanwhile (another tab): the app's own screens take over.
    hooks.locked();
    return;
  }
  $("setup-accepted").textContent = `You accepted the terms of use, version ${setup.terms.version}. How do you want to set up Postern on this computer?`;
  $("setup-heading").textContent = "Set up Postern on this computer";
  $("setup-choose").hidden = false;
  $("setup-form").hidden = true;
  showScreen("setup");
  focusHeading("setup-heading");
}

function showWay(way) {
  setup.way = way;
  const w = ways[way];
  for (const id of ["setup-create-fields", "setup-link-fields", "setup-restore-fields", "setup-device-fields"]) {
    const on = w.fields.includes(id);
    $(id).hidden = !on;
    $(id).disabled = !on; // a hidden field is not required
  }
  const info = setup.info;
  if (!$("setup-relay").value && info.relay) {
    $("setup-relay").value = info.relay;
  }
  if (!$("setup-device").value && info.device_name) {
    $("setup-device").value = info.device_name;
  }
  $("setup-pass-help").textContent = `At least ${info.min_passphrase} characters; several unrelated words work well. It protects your keys on this computer, and no one can recover it if you forget it.`;
  $("setup-heading").textContent = w.heading;
  $("setup-submit").textContent = w.submit;
  $("setup-error").hidden = true;
  $("setup-progress").textContent = "";
  $("setup-choose").hidden = true;
  $("setup-form").hidden = false;
  focusHeading("setup-heading");
}

function back() {
  $("setup-error").hidden = true;
  $("setup-choose").hidden = false;
  $("setup-form").hidden = true;
  $("setup-heading").textContent = "Set up Postern on this computer";
  focusHeading("setup-heading");
}

// uploadBackup sends the chosen file as it is (the server bounds it).
async function uploadBackup(file) {
  if (file.size > setup.info.max_backup_size) {
    throw new Error(`the backup file is too large: more than ${setup.info.max_backup_size} bytes`);
  }
  const resp = await fetch("/api/setup/backup", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/octet-stream" },
    body: file,
  });
  if (!resp.ok) {
    let body = null;
    try {
      body = await resp.json();
    } catch {
      body = null;
    }
    const e = new Error((body && body.error) || `upload failed (${resp.status})`);
    e.hint = body && body.hint;
    e.status = resp.status;
    throw e;
  }
}

async function submit(ev) {
  ev.preventDefault();
  const err = $("setup-error");
  const progress = $("setup-progress");
  err.hidden = true;
  const common = {
    passphrase: $("setup-pass").value,
    repeat: $("setup-pass2").value,
    accept_terms: setup.terms.version,
    invite: $("setup-invite").value.trim(),
  };
  $("setup-submit").disabled = true;
  $("setup-back").disabled = true;
  try {
    let res;
    if (setup.way === "create") {
      progress.textContent = "Creating your identity…";
      res = await api("POST", "/api/setup/create", { ...common, name: $("setup-name").value, relay: $("setup-relay").value });
    } else if (setup.way === "link") {
      progress.textContent = "Waiting for your other device: confirm there that this computer may be linked. The code works for 10 minutes.";
      res = await api("POST", "/api/setup/link", { ...common, code: $("setup-code").value, device_name: $("setup-device").value });
    } else {
      const file = $("setup-file").files[0];
      progress.textContent = "Sending the backup file to Postern on this computer…";
      await uploadBackup(file);
      progress.textContent = "Restoring…";
      res = await api("POST", "/api/setup/restore", { ...common, recovery_key: $("setup-recovery").value, device_name: $("setup-device").value });
    }
    $("setup-form").reset();
    progress.textContent = "";
    announce(res.warning ? `Postern is set up. ${res.warning}` : "Postern is set up");
    toInbox();
    await hooks.unlocked();
  } catch (e) {
    progress.textContent = "";
    if (e.status !== 401) {
      err.textContent = e.hint ? `${e.message}. ${e.hint}.` : e.message;
      err.hidden = false;
      if (e.message.includes("passphrase")) {
        $("setup-pass").select();
      }
    }
  } finally {
    $("setup-submit").disabled = false;
    $("setup-back").disabled = false;
  }
}

// --- settings: withdrawing ---

async function showAcceptance() {
  const t = await api("GET", "/api/terms");
  const a = t.acceptance;
  $("set-terms").textContent = a ? `You accepted the terms of use, version ${a.version}, on ${formatTime(a.accepted)}.` : "";
}

async function withdraw() {
  try {
    await api("POST", "/api/terms/withdraw");
  } catch (e) {
    if (e.status === 423 || e.status === 401) {
      return;
    }
  }
  hooks.locked();
  setup.mode = "again";
  showDeclined("You withdrew your acceptance of the terms of use",
    "Postern is locked, receives no messages on this computer, and shows nothing until you accept the terms again.",
    "To use it again, unlock it and accept the terms.",
    "Unlock");
}

onUnlock(() => showAcceptance().catch(() => {}));
onLock(() => {
  $("set-terms").textContent = "";
});

onStart(() => {
  $("terms-accept").addEventListener("click", () => accept().catch(() => {}));
  $("terms-decline").addEventListener("click", () => decline().catch(() => {}));
  $("declined-again").addEventListener("click", () => again().catch(() => {}));
  $("setup-way-create").addEventListener("click", () => showWay("create"));
  $("setup-way-link").addEventListener("click", () => showWay("link"));
  $("setup-way-restore").addEventListener("click", () => showWay("restore"));
  $("setup-back").addEventListener("click", back);
  $("setup-form").addEventListener("submit", submit);
  $("terms-withdraw").addEventListener("click", withdraw);
});
