// The search screen, #/search: the messages kept on this device that
// match, best first (GET /api/search). The query is not put in the
// address: the browser keeps addresses in its history, on disk, and a
// query may name a patient. The last search lives in this page's memory
// until the page locks, so that Back from a message shows it again. Text
// from messages is set with textContent only.

import { $, api, addScreen, addRoute, onLock, onStart, showScreen, formatTime, cell, failed, ticket } from "./core.js";

addScreen("search");

const fields = { q: "search-q", folder: "search-folder", since: "search-since", until: "search-until" };

// folderNames maps the folders' IDs to their names, for the Folder column.
let folderNames = new Map();

// last is the last search's fields, run again when the screen shows.
let last = null;

// shown is the most results shown: the best ones; more words or a filter
// find the others.
const shown = 100;

async function loadFolders(selected) {
  const folders = await api("GET", "/api/folders");
  folderNames = new Map(folders.map((f) => [f.id, f.name]));
  const all = document.createElement("option");
  all.value = "";
  all.textContent = "All folders";
  const opts = folders
    .filter((f) => f.id !== "drafts") // drafts are not messages: not searched
    .map((f) => {
      const o = document.createElement("option");
      o.value = f.id;
      o.textContent = f.name;
      return o;
    });
  $("search-folder").replaceChildren(all, ...opts);
  $("search-folder").value = folderNames.has(selected) ? selected : "";
}

function clearResults() {
  $("search-rows").replaceChildren();
  $("search-table").hidden = true;
  $("search-summary").textContent = "";
  $("search-error").hidden = true;
  $("search-error").textContent = "";
}

async function showSearch() {
  const current = ticket();
  await loadFolders(last ? last.get("folder") || "" : "");
  if (!current()) {
    return; // another screen was asked for meanwhile
  }
  clearResults();
  showScreen("search");
  if (!last) {
    $("search-q").focus();
    return;
  }
  await runSearch(last);
}

async function runSearch(params) {
  const query = new URLSearchParams();
  for (const name of Object.keys(fields)) {
    const v = params.get(name);
    if (v) {
      query.set(name, v);
    }
  }
  query.set("limit", String(shown));
  $("search-button").disabled = true;
  try {
    const found = await api("GET", "/api/search?" + query.toString());
    const terms = queryWords(params.get("q") || "");
    $("search-rows").replaceChildren(...found.map((m) => resultRow(m, terms)));
    $("search-table").hidden = found.length === 0;
    const n = found.length;
    $("search-summary").textContent = n === 0 ? "No messages found." : n === 1 ? "1 message found." :
      n >= shown ? `The ${n} best matches are shown: add words, a folder or dates to find others.` : `${n} messages found.`;
  } catch (e) {
    if (e.status === 401 || e.status === 423) {
      return;
    }
    if (e.status === 400) {
      // The query or a filter: say what is wrong next to the form.
      $("search-error").textContent = e.hint ? `${e.message}. ${e.hint}.` : e.message;
      $("search-error").hidden = false;
      $("search-q").focus();
      return;
    }
    failed(e);
  } finally {
    $("search-button").disabled = false;
  }
}

function resultRow(m, terms) {
  const tr = document.createElement("tr");
  tr.dataset.id = m.id;
  if (m.unread) {
    tr.className = "unread";
  }
  const subject = document.createElement("td");
  if (m.unread) {
    const s = document.createElement("span");
    s.className = "sr";
    s.textContent = "Unread: ";
    subject.append(s);
  }
  const a = document.createElement("a");
  a.href = "#/m/" + encodeURIComponent(m.id);
  a.textContent = m.subject || "(no subject)";
  subject.append(a);
  const snip = snippet(m.text || "", terms);
  if (snip) {
    subject.append(snip);
  }
  const folder = m.folder || (m.outgoing ? "sent" : "inbox");
  tr.append(
    cell(m.outgoing ? `To ${m.to}` : m.from),
    subject,
    cell(formatTime(m.time), "time"),
    cell(folderNames.get(folder) || folder),
  );
  return tr;
}

// queryWords are the words of a query to highlight: those of its words
// and "phrases", not of from:NAME (a person, not the text).
function queryWords(q) {
  const out = [];
  const re = /(from:)?(?:"([^"]*)"?|(\S+))/gi;
  for (const m of q.matchAll(re)) {
    if (m[1]) {
      continue;
    }
    for (const w of (m[2] !== undefined ? m[2] : m[3]).split(/[^\p{L}\p{N}]+/u)) {
      if (w) {
        out.push(fold(w));
      }
    }
  }
  return out;
}

// fold drops letter case and accents, as the search does.
function fold(s) {
  return s.normalize("NFD").replace(/\p{M}/gu, "").toLowerCase();
}

// snippet is a line of the text around its first word that the query
// names, with the words it names marked: text nodes and <mark> elements,
// never HTML. null if no word of the text is named (the match was in the
// subject, a file name or the people).
function snippet(text, terms) {
  if (terms.length === 0) {
    return null;
  }
  const words = [];
  for (const m of text.matchAll(/[\p{L}\p{N}\p{M}]+/gu)) {
    if (terms.includes(fold(m[0]))) {
      words.push({ start: m.index, end: m.index + m[0].length });
    }
  }
  if (words.length === 0) {
    return null;
  }
  const from = Math.max(0, words[0].start - 60);
  const to = Math.min(text.length, from + 200);
  const span = document.createElement("span");
  span.className = "snippet";
  let at = from;
  const put = (s) => span.append(document.createTextNode(s.replace(/\s+/g, " ")));
  if (from > 0) {
    put("…");
  }
  for (const w of words) {
    if (w.start < at || w.end > to) {
      continue;
    }
    put(text.slice(at, w.start));
    const mark = document.createElement("mark");
    mark.textContent = text.slice(w.start, w.end);
    span.append(mark);
    at = w.end;
  }
  put(text.slice(at, to));
  if (to < text.length) {
    put("…");
  }
  return span;
}

function search(ev) {
  ev.preventDefault();
  const params = new URLSearchParams();
  for (const [name, id] of Object.entries(fields)) {
    const v = $(id).value.trim();
    if (v) {
      params.set(name, v);
    }
  }
  last = params;
  clearResults();
  runSearch(params).catch(failed);
}

addRoute("/search", showSearch);

onStart(() => {
  $("search-form").addEventListener("submit", search);
});

onLock(() => {
  clearResults();
  $("search-form").reset();
  $("search-folder").replaceChildren();
  folderNames = new Map();
  last = null;
});
