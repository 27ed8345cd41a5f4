// Availability and do-not-disturb (GET and POST /api/status): compose says
// when the person written to is busy, off duty or not to be disturbed, and
// whether the message also goes to the colleague their status names; the
// settings screen sets this person's own status. A device without an
// organisation directory (404) shows none of it.

import { $, api, announce, failed, formatTime, onContact, onEvent, onLock, onStart, state } from "./core.js";

let statuses = null; // GET /api/status's answer; null: not asked yet or none

async function load() {
  try {
    statuses = await api("GET", "/api/status");
  } catch {
    statuses = null; // no directory on this device
  }
  return statuses;
}

// describe says what a status means now, in a sentence.
function describe(s) {
  const who = s.name === "me" ? "You are" : `${s.name} is`;
  let text = `${who} ${s.availability}`;
  if (s.do_not_disturb && s.dnd_until) {
    text += `, do not disturb until ${formatTime(s.dnd_until)}`;
  }
  return text + ".";
}

// composeStatus shows, under the To field, the status of the person
// named in it.
export async function composeStatus() {
  const p = $("compose-availability");
  const to = $("compose-to").value.trim();
  if (statuses === null) {
    await load();
  }
  const s = (statuses || []).find((x) => x.name === to && x.name !== "me");
  if (!s || (s.availability === "available" && !s.do_not_disturb)) {
    p.hidden = true;
    p.textContent = "";
    return;
  }
  let text = describe(s);
  if (s.forwarding && s.forward_to) {
    const contact = state.contacts.some((c) => c.name === s.forward_to && !c.blocked);
    text += contact
      ? ` Your message will also go to ${s.forward_to}, whom ${s.name} named.`
      : ` ${s.name} named ${s.forward_to}, who is not one of your contacts: your message goes to ${s.name} only.`;
  }
  p.textContent = text;
  p.hidden = false;
}

// settingsStatus fills the settings screen's availability section.
export async function settingsStatus() {
  const ss = await load();
  const section = $("set-status-section");
  section.hidden = ss === null;
  if (ss === null) {
    return;
  }
  const mine = ss.find((s) => s.name === "me");
  $("set-status-result").textContent = "";
  $("set-status-now").textContent = mine
    ? describe(mine) + (mine.forward_to ? ` Forwarded to ${mine.forward_to} while do not disturb runs or you are off duty.` : "")
    : "You have not set your availability.";
  if (mine) {
    $("set-status-availability").value = mine.availability === "off duty" ? "off" : mine.availability;
    $("set-status-forward").value = mine.forward_to || "";
  }
}

async function setStatus(ev) {
  ev.preventDefault();
  $("set-status-button").disabled = true;
  try {
    const res = await api("POST", "/api/status", {
      availability: $("set-status-availability").value,
      dnd_minutes: Number($("set-status-dnd").value),
      forward_to: $("set-status-forward").value.trim(),
    });
    await settingsStatus();
    const sent = `Status set; sent to ${res.sent} ${res.sent === 1 ? "colleague" : "colleagues"}`;
    $("set-status-result").textContent = sent;
    announce(sent);
  } catch (e) {
    failed(e);
  } finally {
    $("set-status-button").disabled = false;
  }
}

// contactStatus shows a contact's availability on their page.
async function contactStatus(c) {
  const p = $("contact-availability");
  await load();
  const s = (statuses || []).find((x) => x.name === c.name);
  p.hidden = !s;
  p.textContent = s ? describe(s) + (s.forwarding && s.forward_to ? ` Messages to ${s.name} also go to ${s.forward_to} now.` : "") : "";
}

onContact(contactStatus);

let timer = null;

onStart(() => {
  $("compose-to").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(composeStatus, 150);
  });
  $("compose-form").addEventListener("reset", () => {
    $("compose-availability").hidden = true;
  });
  $("set-status-form").addEventListener("submit", setStatus);
});

onEvent("status", async () => {
  await load();
  if (!$("screen-compose").hidden) {
    await composeStatus();
  }
});

onLock(() => {
  statuses = null;
  clearTimeout(timer);
  $("compose-availability").hidden = true;
  $("compose-availability").textContent = "";
  $("set-status-now").textContent = "";
  $("contact-availability").hidden = true;
  $("contact-availability").textContent = "";
  $("set-status-section").hidden = true;
});
