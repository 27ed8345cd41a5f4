// Attachments: files added to the compose screen (by the picker or by
// dropping them on the form) are uploaded at once to the local server in
// pieces, each with a progress bar; after a dropped connection the
// upload asks the server how much it holds and goes on from there. The
// message is sent with the uploads' IDs. The message screen downloads a
// file with a progress bar, resuming with a Range request where a
// connection broke, then saves it and lets its bytes go. Uploads are not
// part of drafts: the server drops them when Postern locks (their keys
// go with the lock), and the page says so.

import { $, api, APIError, hooks, announce, onLock, onStart } from "./core.js";

const pieceSize = 1 << 20; // bytes per PUT: the most a dropped connection loses
const maxFailures = 8; // in a row, without progress, before giving up
const maxFiles = 16; // client.MaxAttachments

let uploads = []; // {id, file, li, bar, pct, status, promise, xhr, failed}
let serial = 0;
let pendingURLs = [];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const backoff = (n) => sleep(Math.min(250 * 2 ** n, 8000));

export function formatSize(n) {
  if (n < 1024) {
    return `${n} bytes`;
  }
  const units = ["KiB", "MiB", "GiB"];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

// progressRow makes a labelled progress bar with its percentage as text.
function progressRow(label, max) {
  const id = `xfer-${++serial}`;
  const bar = document.createElement("progress");
  bar.id = id;
  bar.max = Math.max(max, 1);
  bar.value = 0;
  bar.setAttribute("aria-label", label);
  const pct = document.createElement("span");
  pct.className = "pct";
  pct.textContent = "0 %";
  return { bar, pct };
}

function showProgress(p, done, total) {
  p.bar.value = total > 0 ? done : p.bar.max;
  p.pct.textContent = `${total > 0 ? Math.floor((done * 100) / total) : 100} %`;
}

// --- uploads ---

function addFiles(files) {
  $("compose-files-dropped").hidden = true;
  for (const file of files) {
    if (uploads.length >= maxFiles) {
      showUploadError(`At most ${maxFiles} files go with one message.`);
      break;
    }
    startUpload(file);
  }
}

function showUploadError(text) {
  const err = $("compose-error");
  err.textContent = text;
  err.hidden = false;
}

function startUpload(file) {
  const li = document.createElement("li");
  const name = document.createElement("span");
  name.className = "file-name";
  name.textContent = `${file.name} (${formatSize(file.size)})`;
  const p = progressRow(`Upload of ${file.name}`, file.size);
  const status = document.createElement("span");
  status.className = "note";
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "secondary";
  remove.textContent = "Remove";
  remove.setAttribute("aria-label", `Remove ${file.name}`);
  li.append(name, p.bar, p.pct, status, remove);
  $("compose-uploads").append(li);
  $("compose-uploads").hidden = false;
  const item = { id: "", file, li, ...p, status, xhr: null, failed: null };
  remove.addEventListener("click", () => removeUpload(item));
  uploads.push(item);
  item.promise = upload(item).catch((e) => {
    item.failed = e;
    if (e.status === 423 || e.status === 401) {
      return; // the lock or the sign-in screen took over
    }
    status.textContent = `Not uploaded: ${e.hint ? `${e.message}. ${e.hint}.` : e.message}`;
    status.className = "error";
  });
}

async function upload(item) {
  const u = await api("POST", "/api/uploads", { name: item.file.name, size: item.file.size });
  item.id = u.id;
  let off = u.offset;
  let failures = 0;
  while (off < item.file.size) {
    try {
      off = await put(item, off);
      failures = 0;
    } catch (e) {
      if (item.removed || (e.status && e.status !== 409 && e.status < 500)) {
        throw e; // locked, gone, refused: trying again would not help
      }
      if (++failures > maxFailures) {
        throw e;
      }
      item.status.textContent = "Connection lost; resuming";
      await backoff(failures);
      try {
        off = (await api("GET", "/api/uploads/" + encodeURIComponent(item.id))).offset;
      } catch (e2) {
        if (e2.status) {
          throw e2;
        }
        // Still no connection: the next round tries again.
      }
    }
  }
  showProgress(item, item.file.size, item.file.size);
  item.status.textContent = "Uploaded";
  announce(`${item.file.name} uploaded`);
}

// put sends one piece from off on and resolves to the server's offset
// after it. Progress shows as the bytes leave.
function put(item, off) {
  return new Promise((resolve, reject) => {
    const end = Math.min(off + pieceSize, item.file.size);
    const xhr = new XMLHttpRequest();
    item.xhr = xhr;
    xhr.open("PUT", "/api/uploads/" + encodeURIComponent(item.id));
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.setRequestHeader("Upload-Offset", String(off));
    xhr.upload.addEventListener("progress", (ev) => showProgress(item, off + ev.loaded, item.file.size));
    xhr.addEventListener("load", () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status === 200 && body) {
        showProgress(item, body.offset, item.file.size);
        resolve(body.offset);
        return;
      }
      if (xhr.status === 423) {
        hooks.locked();
      }
      reject(new APIError(xhr.status, body));
    });
    xhr.addEventListener("error", () => reject(new Error("the connection to Postern was lost")));
    xhr.addEventListener("abort", () => reject(new APIError(0, { error: "removed" })));
    xhr.send(item.file.slice(off, end));
  });
}

function removeUpload(item) {
  item.removed = true;
  if (item.xhr) {
    item.xhr.abort();
  }
  uploads = uploads.filter((u) => u !== item);
  item.li.remove();
  $("compose-uploads").hidden = uploads.length === 0;
  announce(`${item.file.name} removed`);
  item.promise.finally(() => {
    if (item.id) {
      api("DELETE", "/api/uploads/" + encodeURIComponent(item.id)).catch(() => {});
    }
  });
  $("compose-files").focus();
}

// attachmentIDs waits for the uploads and returns their IDs, for the
// send; it throws if one could not be uploaded.
export async function attachmentIDs() {
  await Promise.all(uploads.map((u) => u.promise));
  const bad = uploads.find((u) => u.failed);
  if (bad) {
    throw new Error(`${bad.file.name} could not be uploaded: remove it or add it again`);
  }
  return uploads.map((u) => u.id);
}

// resetAttachments empties the compose screen's list: after a send (the
// server dropped the uploads with it) or when a new message begins (they
// are dropped here).
export function resetAttachments(sent) {
  dropList(sent);
  if (sent) {
    $("compose-files-dropped").hidden = true;
  }
}

function dropList(sent) {
  for (const u of uploads) {
    u.removed = true;
    if (u.xhr) {
      u.xhr.abort();
    }
    if (!sent) {
      u.promise.finally(() => {
        if (u.id) {
          api("DELETE", "/api/uploads/" + encodeURIComponent(u.id)).catch(() => {});
        }
      });
    }
  }
  uploads = [];
  $("compose-uploads").replaceChildren();
  $("compose-uploads").hidden = true;
  $("compose-files").value = "";
}

// --- downloads ---

// fileItem is a file of a message on the message screen: a button that
// downloads it, with its progress.
export function fileItem(msgID, index, f) {
  const li = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "secondary";
  button.textContent = `Download ${f.name}`;
  const size = document.createElement("span");
  size.textContent = ` ${formatSize(f.size)}`;
  const p = progressRow(`Download of ${f.name}`, f.size);
  p.bar.hidden = true;
  p.pct.hidden = true;
  const status = document.createElement("span");
  status.className = "note";
  li.append(button, size, p.bar, p.pct, status);
  button.addEventListener("click", async () => {
    button.disabled = true;
    p.bar.hidden = false;
    p.pct.hidden = false;
    status.className = "note";
    status.textContent = "";
    try {
      await download(`/api/messages/${encodeURIComponent(msgID)}/files/${index}`, f, p, status);
      status.textContent = "Downloaded";
      announce(`${f.name} downloaded`);
    } catch (e) {
      if (e.status !== 401 && e.status !== 423) {
        status.textContent = `Not downloaded: ${e.hint ? `${e.message}. ${e.hint}.` : e.message}`;
        status.className = "error";
      }
    } finally {
      button.disabled = false;
    }
  });
  return li;
}

async function download(url, f, p, status) {
  let parts = [];
  let got = 0;
  let failures = 0;
  for (;;) {
    try {
      const headers = got > 0 ? { Range: `bytes=${got}-` } : {};
      const resp = await fetch(url, { credentials: "same-origin", headers, cache: "no-store" });
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
      if (got > 0 && resp.status !== 206) {
        parts = []; // the whole file came again
        got = 0;
      }
      const reader = resp.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) {
          break;
        }
        parts.push(value);
        got += value.length;
        failures = 0;
        showProgress(p, got, f.size);
      }
      if (got < f.size) {
        throw new Error("the download was cut short");
      }
      break;
    } catch (e) {
      if (e instanceof APIError || ++failures > maxFailures) {
        throw e;
      }
      status.textContent = "Connection lost; resuming";
      await backoff(failures);
    }
  }
  showProgress(p, f.size, f.size);
  // Saved through a link to the bytes, which are let go right after.
  const href = URL.createObjectURL(new Blob(parts, { type: "application/octet-stream" }));
  parts = null;
  const a = document.createElement("a");
  a.href = href;
  a.download = f.name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  pendingURLs.push(href);
  setTimeout(() => {
    URL.revokeObjectURL(href);
    pendingURLs = pendingURLs.filter((u) => u !== href);
  }, 1000);
}

// --- the inbox's marker ---

// markAttachments adds the paperclip to a message's subject cell.
export function markAttachments(td, m) {
  if (m.attachments && m.attachments.length) {
    const s = document.createElement("span");
    s.className = "clip";
    s.setAttribute("role", "img");
    s.setAttribute("aria-label", "has attachments");
    s.title = "has attachments";
    s.textContent = "\u{1F4CE}";
    td.append(" ", s);
  }
  return td;
}

// --- listeners ---

onLock(() => {
  if (uploads.length > 0) {
    // Shown until a file is added (the page may see the lock twice).
    $("compose-files-dropped").hidden = false;
  }
  dropList(true); // the server dropped them already
  for (const href of pendingURLs) {
    URL.revokeObjectURL(href);
  }
  pendingURLs = [];
});

onStart(() => {
  $("compose-files").addEventListener("change", (ev) => {
    addFiles([...ev.target.files]);
    ev.target.value = "";
  });
  const zone = $("compose-form");
  zone.addEventListener("dragover", (ev) => {
    if (ev.dataTransfer && [...ev.dataTransfer.types].includes("Files")) {
      ev.preventDefault();
      ev.dataTransfer.dropEffect = "copy";
      zone.classList.add("dropping");
    }
  });
  zone.addEventListener("dragleave", (ev) => {
    if (!zone.contains(ev.relatedTarget)) {
      zone.classList.remove("dropping");
    }
  });
  zone.addEventListener("drop", (ev) => {
    zone.classList.remove("dropping");
    if (ev.dataTransfer && ev.dataTransfer.files.length) {
      ev.preventDefault();
      addFiles([...ev.dataTransfer.files]);
    }
  });
});
