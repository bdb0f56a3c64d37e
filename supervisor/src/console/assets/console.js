// runwarm console, first layer: list scripts, invoke one, follow its events, show the record.
// Every call goes through the console's /api gateway, which forwards to runwarmd as the user
// who started `runwarm console`.
"use strict";

const $ = (id) => document.getElementById(id);

function say(text, isError) {
  const status = $("status");
  status.textContent = text;
  status.className = isError ? "error" : "";
}

// A problem+json answer as one line: status, code, detail, then the hint.
function describe(status, body) {
  if (body && typeof body === "object") {
    let text = `${status} ${body.code || ""} ${body.title || ""}: ${body.detail || ""}`;
    if (body.hint) text += ` — hint: ${body.hint}`;
    return text;
  }
  return `${status}: ${body}`;
}

async function api(method, path, body, headers) {
  const init = { method, headers: Object.assign({ accept: "application/json" }, headers || {}) };
  if (body !== undefined) {
    init.body = body;
    init.headers["content-type"] = "application/json";
  }
  const answer = await fetch(`/api${path}`, init);
  const text = await answer.text();
  let parsed = text;
  try { parsed = text ? JSON.parse(text) : null; } catch (_) { /* not JSON */ }
  if (!answer.ok) throw new Error(describe(answer.status, parsed));
  return parsed;
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
  return td;
}

// Each keystroke in the filter asks again; only the newest question's answer is shown, so a
// slow older answer cannot overwrite a newer one.
let listing = 0;

async function listScripts() {
  const q = $("filter").value.trim();
  const mine = ++listing;
  try {
    const list = await api("GET", q ? `/v1/scripts?q=${encodeURIComponent(q)}` : "/v1/scripts");
    if (mine !== listing) return;
    const scripts = Array.isArray(list) ? list : (list && list.scripts) || [];
    const tbody = $("scripts");
    tbody.replaceChildren();
    for (const s of scripts) {
      const row = document.createElement("tr");
      cell(row, s.name);
      cell(row, s.runtime || "");
      // The listing names the version tags (`["latest", "prod"]`).
      cell(row, (Array.isArray(s.tags) ? s.tags : Object.keys(s.tags || {})).join(", "));
      const pick = document.createElement("button");
      pick.type = "button";
      pick.textContent = "Run…";
      pick.setAttribute("aria-label", `Run ${s.name}`);
      pick.addEventListener("click", () => { $("script").value = s.name; $("payload").focus(); });
      cell(row, "").appendChild(pick);
      tbody.appendChild(row);
    }
    say(`${scripts.length} script(s)`);
  } catch (e) {
    if (mine === listing) say(e.message, true);
  }
}

// The stream being followed; a new invoke closes it, so two executions never mix output.
let following = null;

// Follows the execution's events: output lines as they come, then the record from `end`.
function follow(id) {
  const out = $("output");
  let ended = false;
  if (following) following.close();
  const events = new EventSource(`/api/v1/executions/${encodeURIComponent(id)}/events`);
  following = events;
  for (const kind of ["stdout", "stderr"]) {
    events.addEventListener(kind, (e) => {
      try { out.textContent += JSON.parse(e.data).text; } catch (_) { /* skip */ }
    });
  }
  events.addEventListener("state", (e) => {
    try { say(`${id}: ${JSON.parse(e.data).state}`); } catch (_) { /* skip */ }
  });
  events.addEventListener("end", (e) => {
    ended = true;
    events.close();
    try {
      const record = JSON.parse(e.data);
      $("record").textContent = JSON.stringify(record, null, 2);
      say(`${id}: ${record.state}`, record.state !== "completed");
    } catch (_) { say("the end event is not JSON", true); }
  });
  // EventSource reconnects by itself after an error, replaying the stream; instead, stop and
  // show where the execution stands, so a lost stream never leaves the page silently waiting.
  events.onerror = () => {
    events.close();
    if (ended) return;
    api("GET", `/v1/executions/${encodeURIComponent(id)}`)
      .then((record) => {
        $("record").textContent = JSON.stringify(record, null, 2);
        say(`${id}: ${record.state} (the event stream was lost; the record as it stands)`, true);
      })
      .catch((e) => say(`the event stream was lost: ${e.message}`, true));
  };
}

async function invoke(event) {
  event.preventDefault();
  const name = $("script").value.trim();
  const payload = $("payload").value;
  try { JSON.parse(payload); } catch (e) { say(`the payload is not JSON: ${e.message}`, true); return; }
  $("output").textContent = "";
  $("record").textContent = "";
  try {
    const accepted = await api("POST", `/v1/scripts/${encodeURIComponent(name)}/invoke`, payload,
      { prefer: "respond-async" });
    say(`${accepted.id}: queued`);
    follow(accepted.id);
  } catch (e) {
    say(e.message, true);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("refresh").addEventListener("click", listScripts);
  $("filter").addEventListener("input", listScripts);
  $("run").addEventListener("submit", invoke);
  listScripts();
});
