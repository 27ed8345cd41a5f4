// For the medical record, on the message screen: the conversation's
// patient context (GET/PUT /api/patient/NAME) and the signed FHIR export
// of the message or of the whole conversation (GET /api/export), saved
// as a file by the browser.

import { $, APIError, api, announce, failed, hooks, onLock, onStart, shownConversation } from "./core.js";

let shown = null; // {id, peer}: the message on the screen and its contact

function hide() {
  shown = null;
  $("record").hidden = true;
  $("record-patient").textContent = "";
  $("record-patient-id").value = "";
  $("record-encounter-id").value = "";
  $("record-status").textContent = "";
}

function render(p) {
  $("record-patient").textContent = p.patient
    ? `This conversation is filed under patient ${p.patient}${p.encounter ? `, encounter ${p.encounter}` : ""}.`
    : "This conversation is not filed under a patient.";
  $("record-patient-id").value = p.patient || "";
  $("record-encounter-id").value = p.encounter || "";
  $("record-clear").hidden = !p.patient;
}

// refresh shows the section for a message with a contact (not a notice).
async function refresh() {
  try {
    const c = await shownConversation();
    if (!c || !c.peer) {
      hide();
      return;
    }
    const p = await api("GET", "/api/patient/" + encodeURIComponent(c.peer));
    if (!c.still()) {
      return; // the page moved on meanwhile
    }
    if (!shown || shown.id !== c.id) {
      $("record-status").textContent = "";
    }
    shown = { id: c.id, peer: c.peer };
    render(p);
    $("record").hidden = false;
  } catch (e) {
    hide();
    if (e.status !== 404) {
      failed(e);
    }
  }
}

async function save(ev, clear) {
  ev.preventDefault();
  if (!shown) {
    return;
  }
  const body = clear
    ? { patient: "", encounter: "" }
    : { patient: $("record-patient-id").value.trim(), encounter: $("record-encounter-id").value.trim() };
  if (!clear && !body.patient) {
    $("record-status").textContent = "Enter the patient identifier first.";
    $("record-patient-id").focus();
    return;
  }
  try {
    const p = await api("PUT", "/api/patient/" + encodeURIComponent(shown.peer), body);
    render(p);
    const said = clear ? "Patient removed from this conversation" : "Patient saved for this conversation";
    $("record-status").textContent = said;
    announce(said);
  } catch (e) {
    $("record-status").textContent = e.message || "Not saved";
    failed(e);
  }
}

// downloadRecord fetches a signed record export from url and saves it as
// a file through a link to its bytes, which are let go right after. It
// returns the sentence that says what was exported; a refusal is thrown
// as an APIError (a locked screen is told first).
export async function downloadRecord(url) {
  const resp = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  if (!resp.ok) {
    let body = null;
    try {
      body = await resp.json();
    } catch {
      body = null;
    }
    if (resp.status === 423) {
      hooks.locked();
    }
    throw new APIError(resp.status, body);
  }
  const blob = await resp.blob();
  const name = (resp.headers.get("Content-Disposition") || "").match(/filename="([^"]+)"/)?.[1] || "record.json";
  const n = Number(resp.headers.get("X-Postern-Messages"));
  const files = Number(resp.headers.get("X-Postern-Files"));
  const href = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = href;
  a.download = name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 1000);
  const what = `${n} message${n === 1 ? "" : "s"}${files ? ` and ${files} file${files === 1 ? "" : "s"}` : ""}`;
  return `Exported ${what} to ${name}, signed by you`;
}

// exportRecord saves the message's or the conversation's export.
async function exportRecord(whole) {
  if (!shown) {
    return;
  }
  const q = whole ? "with=" + encodeURIComponent(shown.peer) : "message=" + encodeURIComponent(shown.id);
  const buttons = [$("record-export-message"), $("record-export-all")];
  buttons.forEach((b) => (b.disabled = true));
  $("record-status").textContent = "Exporting…";
  try {
    const said = await downloadRecord("/api/export?" + q);
    $("record-status").textContent = said;
    announce(said);
  } catch (e) {
    $("record-status").textContent = `Not exported: ${e.message || e}`;
    failed(e);
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

onStart(() => {
  window.addEventListener("hashchange", refresh);
  $("record-form").addEventListener("submit", (ev) => save(ev, false));
  $("record-clear").addEventListener("click", (ev) => save(ev, true));
  $("record-export-message").addEventListener("click", () => exportRecord(false));
  $("record-export-all").addEventListener("click", () => exportRecord(true));
});
onLock(hide);
