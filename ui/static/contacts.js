// The contacts' screens: the list with each contact's verification, and a
// contact's page with the safety number in groups, its QR code, and
// "Mark as verified" ('postern contacts verify NAME [--number DIGITS]').
// Names and numbers are set as textContent only.

import {
  $, api, addScreen, addRoute, hooks, onLock, onStart, showScreen, cell, announce, ticket,
} from "./core.js";
import "./restrict.js"; // restricting a contact, on the contact's page

addScreen("contact");

const shown = { name: "" }; // the contact whose page is shown

const stateWords = {
  verified: "Verified",
  unverified: "Not verified",
  changed: "Changed: compare again",
};

function contactHref(name) {
  return "#/contacts/" + encodeURIComponent(name);
}

async function showList() {
  const current = ticket();
  const cs = await api("GET", "/api/contacts");
  const rows = cs.map((c) => {
    const tr = document.createElement("tr");
    const name = document.createElement("td");
    const a = document.createElement("a");
    a.href = contactHref(c.name);
    a.textContent = c.name;
    name.append(a);
    if (c.blocked) {
      name.append(" (blocked)");
    }
    if (c.restricted) {
      name.append(" (restricted your access)");
    }
    if (c.restricted_by_me) {
      name.append(" (restricted by you)");
    }
    tr.append(name, cell(c.safety_number, "mono"), cell(stateWords[c.verification] || c.verification, c.verification));
    return tr;
  });
  $("contacts-rows").replaceChildren(...rows);
  $("contacts-empty").hidden = rows.length > 0;
  $("contacts-table").hidden = rows.length === 0;
  if (current()) {
    showScreen("contacts"); // unless another screen was asked for meanwhile
  }
}

// groups puts the 12 groups of 5 digits in a grid of 4 columns, each
// group its own element, so that they are read and compared in groups.
function groups(number) {
  return number.split(" ").map((g) => {
    const span = document.createElement("span");
    span.textContent = g;
    return span;
  });
}

function explain(c) {
  switch (c.verification) {
    case "verified":
      return `You compared this safety number with ${c.name}'s. If it changes, nothing is sent to ${c.name} until you compare the new one and verify again.`;
    case "changed":
      return `${c.name}'s safety number changed: ${c.name} may have reinstalled Postern or started over, or someone may be standing between you. Nothing is sent to ${c.name} until you compare the new number, in person or on a call, and verify again.`;
  }
  return `Not verified yet. Compare this safety number with the one ${c.name} sees (in their Contacts, on the page with your name), in person or on a call; if they are the same, no one stands between you.`;
}

async function showContact(name) {
  const current = ticket();
  const c = await api("GET", "/api/contacts/" + encodeURIComponent(name));
  shown.name = c.name;
  $("contact-name").textContent = c.name;
  const st = $("contact-state");
  st.textContent = stateWords[c.verification] || c.verification;
  st.className = "contact-state " + c.verification;
  $("contact-explain").textContent = explain(c);
  $("contact-number").replaceChildren(...groups(c.safety_number));
  const img = $("contact-qr");
  img.alt = `The safety number with ${c.name} as a QR code`;
  img.src = "/api/contacts/" + encodeURIComponent(c.name) + "/qr";
  $("contact-how").textContent = `${c.name} can scan this code with a phone's camera and compare what it reads with the number on their screen.`;
  $("verify-compared-label").textContent = `I compared the safety number with ${c.name}'s and it is the same`;
  $("verify-form").reset();
  $("verify-form").hidden = c.verification === "verified";
  $("verify-error").hidden = true;
  await Promise.all(hooks.contact.map((fn) => fn(c)));
  if (!current()) {
    return;
  }
  showScreen("contact");
  $("nav-contacts").setAttribute("aria-current", "page");
  $("contact-name").focus();
}

async function verify(ev) {
  ev.preventDefault();
  const err = $("verify-error");
  err.hidden = true;
  $("verify-button").disabled = true;
  try {
    const r = await api("POST", "/api/contacts/" + encodeURIComponent(shown.name) + "/verify", {
      compared: $("verify-compared").checked,
      number: $("verify-number").value.trim(),
    });
    await showContact(r.contact.name);
    $("verify-status").textContent = r.message;
    announce(r.message);
  } catch (e) {
    if (e.status !== 401 && e.status !== 423) {
      err.textContent = e.hint ? `${e.message}. ${e.hint}.` : e.message;
      err.hidden = false;
    }
  } finally {
    $("verify-button").disabled = false;
  }
}

addRoute("/contacts", async (rest) => {
  $("verify-status").textContent = "";
  const name = rest.replace(/^\//, "");
  if (name === "") {
    await showList();
  } else {
    await showContact(name);
  }
});

onLock(() => {
  shown.name = "";
  $("contacts-rows").replaceChildren();
  for (const id of ["contact-name", "contact-state", "contact-explain", "contact-how", "verify-status", "verify-error"]) {
    $(id).textContent = "";
  }
  $("contact-number").replaceChildren();
  $("contact-qr").removeAttribute("src");
  $("verify-form").reset();
});

onStart(() => {
  $("verify-form").addEventListener("submit", verify);
});
