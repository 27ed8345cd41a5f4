// The devices' screen ('postern device list|link|revoke') and the alert
// of a device newly linked to this person, shown on every screen until
// acknowledged. The link code is a capability: it lives only in this
// page's memory while the link waits, and is dropped when the link ends
// or the page locks. Names are set as textContent only.

import {
  $, api, addRoute, onLock, onUnlock, onEvent, onStart, showScreen, showError, failed, cell,
  formatTime, announce, currentScreen, ticket,
} from "./core.js";

const dev = {
  list: [], // the devices shown
  revoking: null, // the device whose revoke waits for confirmation
  link: null, // the link's state (GET /api/devices/link)
  poll: null, // the timer following the link
};

const linkActive = () => dev.link && ["starting", "waiting", "confirm", "linking"].includes(dev.link.state);

// --- the list and revoke ---

async function loadDevices() {
  dev.list = await api("GET", "/api/devices");
  const rows = dev.list.map((d) => {
    const tr = document.createElement("tr");
    const name = d.name || "(unnamed)";
    const actions = document.createElement("td");
    if (!d.this) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "secondary";
      b.textContent = "Revoke";
      b.setAttribute("aria-label", `Revoke ${name}`);
      b.dataset.device = d.id;
      b.addEventListener("click", () => askRevoke(d.id));
      actions.append(b);
    }
    tr.append(cell(name + (d.this ? " (this device)" : "")), cell(d.id.slice(0, 16), "mono"), cell(formatTime(d.linked), "time"), actions);
    return tr;
  });
  $("devices-rows").replaceChildren(...rows);
}

function askRevoke(id) {
  const d = dev.list.find((x) => x.id === id);
  if (!d || d.this) {
    return;
  }
  const name = d.name || "(unnamed)";
  dev.revoking = d;
  $("revoke-question").textContent = `Revoke ${name} (${d.id.slice(0, 16)})?`;
  $("revoke-yes").textContent = `Revoke ${name}`;
  $("revoke-box").hidden = false;
  $("revoke-no").focus(); // the safe choice first: Tab reaches the revoke
}

function closeRevoke() {
  const d = dev.revoking;
  dev.revoking = null;
  $("revoke-box").hidden = true;
  $("revoke-question").textContent = "";
  const b = d && document.querySelector(`#devices-rows button[data-device="${d.id}"]`);
  if (b) {
    b.focus();
  }
}

async function revoke() {
  const d = dev.revoking;
  if (!d) {
    return;
  }
  $("revoke-yes").disabled = true;
  try {
    const r = await api("POST", "/api/devices/" + encodeURIComponent(d.id) + "/revoke");
    closeRevoke();
    $("devices-status").textContent = r.message;
    announce(r.message);
    await loadDevices();
    await loadAlerts();
  } catch (e) {
    failed(e);
  } finally {
    $("revoke-yes").disabled = false;
  }
}

// --- linking ---

function showLink() {
  const l = dev.link || { state: "none" };
  const waiting = l.state === "waiting" || l.state === "confirm";
  $("link-box").hidden = !waiting;
  $("link-start").hidden = linkActive();
  if (waiting) {
    if ($("link-code").textContent !== l.code) {
      $("link-code").textContent = l.code;
      $("link-qr").src = "/api/devices/link/qr?t=" + Date.now(); // a new code, a new image
    }
    const exp = new Date(l.expires);
    $("link-expires").textContent = `It expires at ${exp.toLocaleTimeString()}.`;
  } else {
    dropCode();
  }
  const ask = l.state === "confirm";
  const wasAsking = !$("link-ask").hidden;
  $("link-ask").hidden = !ask;
  if (ask) {
    $("link-question").textContent = `A device named "${l.asking}" asks to be linked to you. Link it?`;
    if (!wasAsking) {
      $("link-no").focus();
      announce($("link-question").textContent);
    }
  } else {
    $("link-question").textContent = "";
  }
  const result = { starting: "Making a link code…", linking: "Linking…" }[l.state] || l.message || "";
  const text = l.hint ? `${result}. ${l.hint}.` : result;
  if ($("link-result").textContent !== text) {
    $("link-result").textContent = text;
  }
}

function dropCode() {
  $("link-code").textContent = "";
  $("link-qr").removeAttribute("src");
  $("link-expires").textContent = "";
}

function stopPoll() {
  if (dev.poll) {
    clearTimeout(dev.poll);
    dev.poll = null;
  }
}

// follow polls the link's state while it runs.
function follow() {
  stopPoll();
  if (!linkActive()) {
    return;
  }
  dev.poll = setTimeout(async () => {
    dev.poll = null;
    try {
      await setLink(await api("GET", "/api/devices/link"));
    } catch (e) {
      failed(e);
      return;
    }
    follow();
  }, 1000);
}

async function setLink(l) {
  const was = dev.link && dev.link.state;
  dev.link = l;
  showLink();
  if (l.state !== was && ["linked", "declined", "failed", "canceled"].includes(l.state)) {
    $("link-start").focus();
    if (l.state === "linked") {
      await loadDevices();
      await loadAlerts();
    }
  }
}

async function startLink() {
  $("link-start").disabled = true;
  try {
    await setLink(await api("POST", "/api/devices/link"));
    if (!$("link-box").hidden) {
      $("link-code").focus();
    }
    follow();
  } catch (e) {
    failed(e);
  } finally {
    $("link-start").disabled = false;
  }
}

async function answerLink(yes) {
  try {
    await setLink(await api("POST", "/api/devices/link/confirm", { link: yes }));
    follow();
  } catch (e) {
    failed(e);
  }
}

async function cancelLink() {
  try {
    await api("DELETE", "/api/devices/link");
    await setLink(await api("GET", "/api/devices/link"));
    follow();
  } catch (e) {
    failed(e);
  }
}

// --- the alert of a newly linked device ---

async function loadAlerts() {
  if (linkActive()) {
    return; // the device being linked here: loaded again when it is done
  }
  const as = await api("GET", "/api/devices/alerts");
  const items = as.map((a) => {
    const li = document.createElement("li");
    const p = document.createElement("p");
    const name = a.name || a.device.slice(0, 16);
    p.textContent = `A new device was linked to your account: ${name}, ${formatTime(a.linked)}. If this was not you, revoke it now.`;
    const go = document.createElement("a");
    go.className = "button";
    go.href = "#/devices?revoke=" + encodeURIComponent(a.device);
    go.textContent = `Revoke ${name}…`;
    const ok = document.createElement("button");
    ok.type = "button";
    ok.className = "secondary";
    ok.textContent = "It was me";
    ok.setAttribute("aria-label", `It was me: I linked ${name}`);
    ok.addEventListener("click", () => acknowledge(a.id));
    li.append(p, go, ok);
    return li;
  });
  $("device-alert-list").replaceChildren(...items);
  $("device-alert").hidden = items.length === 0;
}

async function acknowledge(id) {
  try {
    await api("POST", "/api/devices/alerts/" + encodeURIComponent(id) + "/ack");
    await loadAlerts();
    announce("Alert dismissed");
  } catch (e) {
    failed(e);
  }
}

function clearAlerts() {
  $("device-alert-list").replaceChildren();
  $("device-alert").hidden = true;
}

// --- the screen ---

addRoute("/devices", async (rest, params) => {
  const current = ticket();
  showScreen("devices");
  closeRevoke();
  $("devices-status").textContent = "";
  await loadDevices();
  if (!linkActive()) {
    dev.link = await api("GET", "/api/devices/link");
  }
  showLink();
  follow();
  const which = params.get("revoke");
  if (which && current()) {
    askRevoke(which);
  }
});

onEvent("alert", () => {
  loadAlerts().catch(() => {});
  if (currentScreen() === "devices") {
    loadDevices().catch(() => {});
  }
});

onUnlock(async () => {
  await loadAlerts().catch((e) => {
    if (e.status !== 401 && e.status !== 423) {
      showError(e);
    }
  });
});

onLock(() => {
  stopPoll();
  dev.list = [];
  dev.link = null;
  dev.revoking = null;
  dropCode();
  $("link-box").hidden = true;
  $("link-ask").hidden = true;
  $("link-start").hidden = false;
  $("revoke-box").hidden = true;
  for (const id of ["link-question", "link-result", "revoke-question", "devices-status"]) {
    $(id).textContent = "";
  }
  $("devices-rows").replaceChildren();
  clearAlerts();
});

onStart(() => {
  $("link-start").addEventListener("click", startLink);
  $("link-cancel").addEventListener("click", cancelLink);
  $("link-yes").addEventListener("click", () => answerLink(true));
  $("link-no").addEventListener("click", () => answerLink(false));
  $("revoke-yes").addEventListener("click", revoke);
  $("revoke-no").addEventListener("click", closeRevoke);
  $("revoke-box").addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") {
      closeRevoke();
    }
  });
});
