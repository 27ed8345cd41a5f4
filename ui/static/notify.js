// Desktop notifications that say nothing: for a message that arrives
// while this page is not looked at, one notification reading only "New
// secure message", with no sender, subject or text, all under one tag so
// that they collapse into one. The browser's permission is asked for only
// from the Settings button (browsers refuse a prompt without a click),
// and this device's setting (GET/PUT /api/settings,
// desktop_notifications) or the organisation's policy turns them off.

import { $, api, onUnlock, onLock, onEvent, onStart, failed } from "./core.js";

const title = "New secure message";
const tag = "postern-new-message";

// settings are the API's settings while unlocked, null while locked.
let settings = null;

function supported() {
  return typeof window.Notification === "function";
}

function permission() {
  return supported() ? window.Notification.permission : "unsupported";
}

function enabled() {
  return settings !== null && settings.desktop_notifications && !settings.desktop_notifications_by_policy &&
    permission() === "granted";
}

// render shows in Settings what holds now and the button that changes it.
function render(note) {
  let text = "";
  let on = false;
  let off = false;
  if (settings === null) {
    text = "";
  } else if (settings.desktop_notifications_by_policy) {
    text = "Desktop notifications are turned off on this computer by your organisation.";
  } else if (!supported()) {
    text = "This browser cannot show desktop notifications.";
  } else if (!settings.desktop_notifications) {
    text = "Desktop notifications are off on this device.";
    on = true;
  } else if (permission() === "granted") {
    text = "Desktop notifications are on.";
    off = true;
  } else if (permission() === "denied") {
    text = "This browser blocks notifications from this page: allow them in its site settings to see them here.";
    off = true;
  } else {
    text = "Desktop notifications are not turned on in this browser yet.";
    on = true;
  }
  $("notify-state").textContent = note ? `${note} ${text}` : text;
  $("notify-on").hidden = !on;
  $("notify-off").hidden = !off;
}

async function load() {
  try {
    settings = await api("GET", "/api/settings");
  } catch (e) {
    settings = null; // none shown; the settings screen says why when opened
  }
  render();
}

async function turnOn() {
  try {
    let p = permission();
    if (p === "default") {
      p = await window.Notification.requestPermission(); // on this click: a user gesture
    }
    if (p !== "granted") {
      render("The browser did not allow notifications.");
      return;
    }
    settings = await api("PUT", "/api/settings", { desktop_notifications: true });
    render();
  } catch (e) {
    failed(e);
  }
}

async function turnOff() {
  try {
    settings = await api("PUT", "/api/settings", { desktop_notifications: false });
    render();
  } catch (e) {
    failed(e);
  }
}

// notify shows the notification for a message that arrived, unless the
// page is in front of the person: then the page itself shows it.
function notify(m) {
  if (m.outgoing || !enabled()) {
    return;
  }
  if (document.visibilityState === "visible" && document.hasFocus()) {
    return;
  }
  try {
    const n = new window.Notification(title, { tag, renotify: true });
    n.addEventListener("click", () => {
      window.focus();
      n.close();
    });
  } catch (e) {
    // A browser that refuses here (some need a service worker) shows none.
  }
}

onEvent("message", notify);

onUnlock(load);

onLock(() => {
  settings = null;
  render();
});

onStart(() => {
  $("notify-on").addEventListener("click", turnOn);
  $("notify-off").addEventListener("click", turnOff);
  // The browser's permission may have changed in its site settings.
  window.addEventListener("hashchange", () => render());
});
