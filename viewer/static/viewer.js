// tinmen view: posts actions with the page's CSRF token, makes study reports on demand,
// and drives the live T2I page. No framework, nothing from outside this server.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]').content;
const $ = (sel) => document.querySelector(sel);

async function call(method, url, body) {
  const opts = {method, credentials: "same-origin", headers: {"X-CSRF-Token": csrf()}};
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(url, opts);
  const type = res.headers.get("content-type") || "";
  const data = type.includes("json") ? await res.json() : await res.text();
  if (!res.ok) throw new Error((data && data.error) || res.statusText);
  return data;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "on") for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function say(target, text, cls) {
  target.textContent = "";
  target.append(el("span", {class: cls || ""}, text));
}

// ------------------------------------------------------------------ session page actions
function replayButton() {
  const btn = $("#replay");
  if (!btn) return;
  btn.addEventListener("click", async () => {
    const out = $("#action-result");
    say(out, "replaying…", "muted");
    try {
      const r = await call("POST", `/api/sessions/${btn.dataset.session}/replay`);
      if (r.identical) {
        out.textContent = "";
        out.append(el("span", {class: "ok", id: "replay-verdict"},
          `identical: ${r.calls_served} model calls served from the record `),
          el("a", {href: `/sessions/${r.replay}`}, "the replay"));
      } else if (r.divergence) {
        say(out, `diverged: ${r.divergence.message}`, "error");
      } else {
        say(out, "replay differs: " + r.differences.join("; "), "error");
      }
    } catch (e) { say(out, e.message, "error"); }
  });
}

function forkForm() {
  const form = $("#fork");
  if (!form) return;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form), out = $("#action-result");
    const body = {at_step: Number(f.get("at_step")), models: {}, options: {}};
    if (f.get("role") && f.get("model")) body.models[f.get("role")] = f.get("model");
    if (f.get("seed") !== "") body.seed = Number(f.get("seed"));
    const option = String(f.get("option") || "").trim();
    if (option) {
      const [key, ...rest] = option.split("=");
      const raw = rest.join("=");
      try { body.options[key.trim()] = JSON.parse(raw); } catch { body.options[key.trim()] = raw; }
    }
    say(out, "forking…", "muted");
    try {
      const r = await call("POST", `/api/sessions/${form.dataset.session}/fork`, body);
      window.location = r.diff_url;
    } catch (e) { say(out, e.message, "error"); }
  });
}

async function studyReport(refresh) {
  const box = $("#report");
  if (!box) return;
  box.textContent = "making the report…";
  try {
    const r = await call("GET", `/api/studies/${box.dataset.study}/report${refresh ? "?refresh=true" : ""}`);
    box.textContent = "";
    for (const name of r.plots) {
      box.append(el("img", {src: `/api/studies/${box.dataset.study}/plots/${encodeURIComponent(name)}?v=${Date.now()}`,
                            alt: name, class: "report-plot"}));
    }
    if (r.table) box.append(el("pre", {}, r.table));
    if (!r.plots.length && !r.table) say(box, "the report is empty", "muted");
  } catch (e) { say(box, `no report: ${e.message}`, "error"); }
}

// ------------------------------------------------------------------ live T2I
function startForm() {
  const form = $("#live-start");
  if (!form) return;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form), models = {};
    for (const input of form.querySelectorAll("input.role")) models[input.name] = input.value;
    const body = {prompt: f.get("prompt"), policy: f.get("policy"), images: f.get("images"),
                  max_turns: Number(f.get("max_turns")), seed: Number(f.get("seed")), models};
    const status = $("#start-status");
    say(status, "starting: the agent reads your prompt…", "muted");
    form.classList.add("busy");
    try {
      const r = await call("POST", "/api/live", body);
      window.location = r.url;
    } catch (e) { say(status, e.message, "error"); form.classList.remove("busy"); }
  });
}

function slotControls(state, send) {
  const box = $("#slots");
  box.textContent = "";
  for (const entity of state.slots) {
    const row = el("div", {class: "slot-entity", "data-entity": entity.name},
      el("span", {class: "name"}, entity.name),
      el("button", {type: "button", class: "drop", on: {click: () => send(`drop ${entity.name}`)}}, "drop"));
    for (const attr of entity.attributes) {
      const select = el("select", {class: "value", "data-slot": `${entity.name}.${attr.name}`});
      for (const v of attr.candidates) {
        const opt = el("option", {value: v}, v);
        if (v === attr.best) opt.selected = true;
        select.append(opt);
      }
      const key = `${entity.name}.${attr.name}`;
      row.append(el("div", {class: "slot-row"}, `${attr.name}${attr.pinned ? " (pinned)" : ""} `, select,
        el("button", {type: "button", class: "set", "data-slot": key,
                      on: {click: () => send(`set ${key}=${select.value}`)}}, "set"),
        el("button", {type: "button", class: "pin", "data-slot": key,
                      on: {click: () => send(`set ${key}=${attr.best}`)}}, `pin ${attr.best}`)));
    }
    box.append(row);
  }
}

function renderLive(state, send) {
  $("#live-status").textContent = state.busy ? "thinking…" : state.status;
  const asking = state.status === "interrupted" && state.question;
  $("#ask").hidden = !asking;
  $("#edit").hidden = !asking;
  $("#done").hidden = state.status !== "completed";
  $("#question").textContent = state.question || "";
  $("#ask-error").textContent = state.error ? `${state.error} — try again` : "";
  const buttons = $("#option-buttons");
  buttons.textContent = "";
  for (const o of state.options) buttons.append(el("button", {type: "button", class: "option",
    on: {click: () => send(o)}}, o));
  if (asking) slotControls(state, send);
  $("#belief").innerHTML = state.svg || "<p class='muted'>no belief graph yet</p>";  // our own SVG
  const changes = $("#changes");
  changes.textContent = "";
  for (const line of state.changes) changes.append(el("li", {}, line));
  const img = $("#image");
  if (state.image) { img.src = `/api/artifacts/${state.image}`; img.hidden = false; }
  const answers = $("#answers");
  answers.textContent = "";
  for (const a of state.answers) answers.append(el("li", {class: "mono"}, String(a)));
  $("#final-prompt").textContent = state.final_prompt || "";
  document.body.dataset.liveStatus = state.busy ? "busy" : state.status;
  document.body.dataset.turn = String(state.turn);
}

function livePage() {
  const root = $(".live");
  if (!root) return;
  const id = root.dataset.session;
  let busy = false;
  const send = async (text) => {
    if (busy || !text) return;
    busy = true;
    root.classList.add("busy");
    $("#live-status").textContent = "thinking…";
    document.body.dataset.liveStatus = "busy";
    try {
      renderLive(await call("POST", `/api/live/${id}/answer`, {text}), send);
    } catch (e) {
      say($("#ask-error"), e.message, "error");
      document.body.dataset.liveStatus = "error";
    } finally { busy = false; root.classList.remove("busy"); }
  };
  const poll = async () => {  // a reloaded tab while an answer is still being acted on
    const state = await call("GET", `/api/live/${id}`);
    renderLive(state, send);
    if (state.busy) setTimeout(poll, 700);
  };
  $("#answer-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("#answer-text").value.trim();
    $("#answer-text").value = "";
    send(text);
  });
  $("#add-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    send(`add ${$("#add-entity").value.trim()}`);
  });
  $("#edit-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    send($("#edit-text").value.trim());
  });
  const initial = JSON.parse($("#live-state").textContent);
  renderLive(initial, send);
  if (initial.busy) setTimeout(poll, 700);
}

document.addEventListener("DOMContentLoaded", () => {
  replayButton();
  forkForm();
  startForm();
  livePage();
  if ($("#report")) studyReport(false);
  const refresh = $("#report-refresh");
  if (refresh) refresh.addEventListener("click", () => studyReport(true));
});
