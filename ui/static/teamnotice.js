// The outsider's side of a team (protocol/SPEC.md section 15.9 "The
// outsider's side"; docs/API.md, GET /api/contacts): composing to a
// contact that said it is a team shows Postern's fixed "not for
// emergencies" notice and, when the team stated them, its response
// windows, in a note beside the recipient. Both are set as textContent.

import { $, api, failed, onEvent, onLock, onStart } from "./core.js";

// teams: the contacts that are teams, name → {name, notice, windows}
// (GET /api/contacts), refreshed when the compose screen appears and
// when a contact changes.
let teams = new Map();

async function loadTeams() {
  const cs = await api("GET", "/api/contacts");
  teams = new Map(cs.filter((c) => c.team).map((c) => [c.name, c.team]));
}

function syncNotice() {
  const team = teams.get($("compose-to").value.trim());
  const box = $("compose-team");
  if (!team) {
    box.hidden = true;
    $("compose-team-notice").textContent = "";
    $("compose-team-windows").textContent = "";
    return;
  }
  $("compose-team-notice").textContent = team.notice;
  $("compose-team-windows").textContent = team.windows || "";
  $("compose-team-windows").hidden = !team.windows;
  box.hidden = false;
}

async function composeShown() {
  try {
    await loadTeams();
    syncNotice();
  } catch (e) {
    failed(e);
  }
}

onEvent("contact", (d) => {
  if (d.change === "team" && !$("screen-compose").hidden) {
    composeShown();
  }
});

onLock(() => {
  teams = new Map();
  syncNotice();
});

onStart(() => {
  for (const t of ["input", "change"]) {
    $("compose-to").addEventListener(t, syncNotice);
  }
  let seen = false;
  new MutationObserver(() => {
    const shown = !$("screen-compose").hidden;
    if (shown && !seen) {
      composeShown();
    }
    seen = shown;
  }).observe($("screen-compose"), { attributes: true, attributeFilter: ["hidden"] });
});
