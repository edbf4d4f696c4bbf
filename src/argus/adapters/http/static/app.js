// Argus web page: everything comes from the public API with the key kept in this browser.
"use strict";

const KEY_STORE = "argus.apiKey";
const REFRESH_MS = 10000;
const LEVELS = ["critical", "warning", "degraded", "healthy"];
const COLORS = { critical: "#FF0000", warning: "#FFA500", degraded: "#FFD700", healthy: "#00FF00" };
const $ = (id) => document.getElementById(id);
const state = { key: null, selected: null, predictions: {}, tick: null, timer: null };

class ApiError extends Error {
  constructor(status, detail) { super(typeof detail === "string" ? detail : JSON.stringify(detail)); this.status = status; }
}

async function api(path) {
  const resp = await fetch(path, { headers: { "X-API-Key": state.key, "Accept": "application/json" } });
  let body = null;
  try { body = await resp.json(); } catch (e) { body = null; }
  if (!resp.ok) throw new ApiError(resp.status, (body && (body.error || body.detail)) || resp.statusText);
  return body;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "style") node.style.cssText = v; else if (k.startsWith("data-")) node.setAttribute(k, v); else node[k] = v;
  }
  for (const child of children) node.append(child);
  return node;
}

function notice(text, isError) {
  const box = $("notice");
  box.hidden = !text;
  box.textContent = text || "";
  box.className = isError ? "error" : "";
}

// --- the key -----------------------------------------------------------------------------
function readKeyFromUrl() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.get("key")) localStorage.setItem(KEY_STORE, params.get("key"));
  if (params.get("server")) state.selected = params.get("server");
  if (params.has("key")) history.replaceState(null, "", location.pathname + location.search);  // key out of the URL
}

function askForKey(message) {
  clearInterval(state.timer);
  $("board").hidden = true;
  $("key-form").hidden = false;
  notice(message || "", Boolean(message));
  document.body.dataset.state = "needs-key";
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  localStorage.setItem(KEY_STORE, $("key-input").value.trim());
  $("key-input").value = "";
  start();
});
$("change-key").addEventListener("click", () => { localStorage.removeItem(KEY_STORE); askForKey(); });
$("explain-refresh").addEventListener("click", () => state.selected && loadExplanation(state.selected));

// --- the fleet -----------------------------------------------------------------------------
async function refresh() {
  try {
    const body = await api("/predictions/current");
    if (body.error) {
      notice(`Waiting for forecasts: ${body.message || body.error}. Servers need an hour of history.`);
      document.body.dataset.state = "waiting";
      return;
    }
    notice("");
    state.predictions = body.predictions || {};
    state.tick = body.timestamp || null;
    renderSummary(body);
    renderHeatmap(state.predictions);
    renderRisks(state.predictions);
    $("board").hidden = false;
    document.body.dataset.state = "loaded";
    if (state.selected && state.predictions[state.selected]) await renderDetail(state.selected, false);
    markExplanationTick();
  } catch (ex) {
    if (ex.status === 401) return askForKey("The API key was refused (401). Enter the right key.");
    if (ex.status === 429) return notice("Rate limited (429); the page retries on its next refresh.", true);
    notice(`Could not load predictions: ${ex.message}`, true);
    document.body.dataset.state = "error";
  }
}

function renderSummary(body) {
  const s = body.summary || {};
  const parts = LEVELS.map((level) => el("span", {},
    el("span", { className: "badge", style: `background:${COLORS[level]}` }, level), " ",
    el("span", { className: "count", "data-level-count": level }, String(s[level] ?? 0))));
  parts.push(el("span", {}, `fleet health ${s.fleet_health ?? "–"}`));
  parts.push(expectedIncidents(s));
  $("summary").replaceChildren(...parts);
  $("as-of").textContent = `${s.total_servers ?? 0} servers · tick ${body.timestamp || ""} UTC · model ${body.model || "?"}`;
}

const pct = (p) => (p == null ? "–" : `${Math.round(p * 100)}%`);

// Expected number of servers with an incident (the sum of their probabilities), not P(at least one):
// that one is ~100 % as soon as one server is critical, so it stays in the tooltip only.
function expectedIncidents(s) {
  const count = (x) => (x == null ? "–" : x > 0 && x < 0.05 ? "< 0.1" : x.toFixed(1));
  const above = s.servers_above_50pct_8h ?? 0;
  return el("span", {
    className: "muted", "data-expected-incidents": "",
    title: `Sum of the servers' probabilities of an incident. Servers above 50 % within 30 min: `
      + `${s.servers_above_50pct_30m ?? 0}, within 8 h: ${above}. P(at least one incident, servers independent): `
      + `30 min ${pct(s.prob_30m)}, 8 h ${pct(s.prob_8h)}.`,
  }, `Expected incidents: ${count(s.expected_incidents_30m)} in 30 min, ${count(s.expected_incidents_8h)} in 8 h`
    + ` · ${above} server${above === 1 ? "" : "s"} above 50 %`);
}

function renderHeatmap(predictions) {
  const byProfile = {};
  for (const [name, p] of Object.entries(predictions)) (byProfile[p.profile] ||= []).push([name, p]);
  const groups = Object.keys(byProfile).sort().map((profile) => el("div", { className: "profile" },
    el("div", { className: "profile-name" }, profile),
    el("div", { className: "tiles" }, ...byProfile[profile].sort().map(([name, p]) => tile(name, p)))));
  $("heatmap").replaceChildren(...groups);
}

function tile(name, p) {
  const level = p.alert.level;
  const node = el("div", {
    className: "tile" + (name === state.selected ? " selected" : ""), "data-server": name, "data-level": level,
    style: `background:${p.alert.color || COLORS[level]}`, title: `${name}: ${p.alert.label} ${p.risk_score}\n${p.message || ""}`,
  }, el("span", {}, name), el("b", {}, String(Math.round(p.risk_score))));
  node.addEventListener("click", () => select(name));
  return node;
}

function renderRisks(predictions) {
  const ranked = Object.entries(predictions).sort((a, b) => b[1].risk_score - a[1].risk_score).slice(0, 10);
  $("risk-rows").replaceChildren(...ranked.map(([name, p]) => {
    const row = el("tr", { "data-server": name },
      el("td", {}, name),
      el("td", {}, el("span", { className: "badge", style: `background:${p.alert.color}` }, p.alert.level)),
      el("td", {}, p.risk_score.toFixed(1)),
      el("td", {}, p.message || ""),
      el("td", {}, p.time_to_issue || "–"));
    row.addEventListener("click", () => select(name));
    return row;
  }));
}

// --- one server -----------------------------------------------------------------------------
async function select(name) {
  state.selected = name;
  document.querySelectorAll(".tile").forEach((t) => t.classList.toggle("selected", t.dataset.server === name));
  await renderDetail(name, true);
}

async function renderDetail(name, withExplanation) {
  const p = state.predictions[name];
  $("detail").hidden = false;
  $("detail-title").textContent = `${name} · ${p.profile} · ${p.alert.level} (${p.risk_score.toFixed(1)})`;
  $("detail-message").textContent = (p.message || "") + (p.time_to_issue ? ` · time to issue: ${p.time_to_issue}` : "");
  let history = { timestamps: [], cpu_pct: [], mem_pct: [] };
  try { history = await api(`/servers/${encodeURIComponent(name)}/metrics?hours=24`); }
  catch (ex) { $("detail-message").textContent += ` · history unavailable: ${ex.message}`; }
  drawChart($("chart-cpu"), history.timestamps, history.cpu_pct, p.forecast, "cpu_pct");
  drawChart($("chart-mem"), history.timestamps, history.mem_pct, p.forecast, "mem_pct");
  if (withExplanation) await loadExplanation(name);
}

const EXPLAIN_UNAVAILABLE = {
  404: "No explanation: the server is unknown or the explanation endpoint is not available in this build.",
  409: "No explanation yet: the server does not have enough history for a forecast.",
  503: "No explanation right now: the engine is busy or not running; try refresh in a moment.",
};

async function loadExplanation(name) {
  const box = $("explanation");
  box.replaceChildren(el("p", { className: "muted" }, "Asking the engine for an explanation…"));
  try {
    const body = await api(`/explain/${encodeURIComponent(name)}`);
    if (state.selected === name) { box.replaceChildren(...renderExplanation(body)); markExplanationTick(); }
  } catch (ex) {
    const text = EXPLAIN_UNAVAILABLE[ex.status] || `No explanation (HTTP ${ex.status || "error"}).`;
    box.replaceChildren(el("p", { className: "muted", "data-explain-status": String(ex.status || 0) },
      text, " ", el("span", {}, ex.message ? `(${ex.message})` : "")));
  }
}

// An explanation is of one engine tick (tick_at); the page keeps refreshing the predictions, so say
// which tick it explains, and when the header has moved on to a newer one.
const hhmm = (iso) => (iso ? String(iso).slice(11, 16) : "?");

function explanationTick(body) {
  const p = body.prediction || {};
  const risk = p.risk_score == null ? "" : ` · risk ${Number(p.risk_score).toFixed(1)} (${p.alert_level})`;
  return el("p", { className: "muted", id: "explain-tick", "data-tick-at": body.tick_at || "" },
    `explains the tick of ${hhmm(body.tick_at)} UTC${risk} · data up to ${hhmm(body.forecast_origin)} UTC`,
    el("span", { className: "stale" }));
}

function markExplanationTick() {
  const line = $("explain-tick");
  if (!line) return;
  const newer = state.tick && line.dataset.tickAt && state.tick !== line.dataset.tickAt;
  line.querySelector(".stale").textContent = newer
    ? ` · the page now shows the tick of ${hhmm(state.tick)}: press refresh to explain it` : "";
}

function renderExplanation(body) {
  const out = [explanationTick(body)];
  const features = (body.shap && body.shap.top_features) || [];
  if (features.length) {
    const max = Math.max(...features.map((f) => Math.abs(f.importance) || 0), 1e-9);
    out.push(el("h4", {}, "What drives the forecast"), el("ul", {}, ...features.map((f) => el("li", {},
      el("span", { className: "bar", style: `width:${Math.round(120 * Math.abs(f.importance) / max)}px` }),
      `${f.feature} ${f.stars || ""} (${Number(f.importance).toFixed(2)})`))));
  }
  const attention = body.attention || {};
  if (attention.analysis || (attention.focus_periods || []).length) {
    out.push(el("h4", {}, "Where the model looked"),
      el("p", {}, `${attention.analysis || ""} ${(attention.focus_periods || []).length ? "Focus: " + attention.focus_periods.join(", ") : ""}`));
  }
  const counterfactuals = body.counterfactuals || [];
  if (counterfactuals.length) {
    out.push(el("h4", {}, "What would help"), el("ul", {}, ...counterfactuals.map((c) =>
      el("li", {}, `${c.scenario}: ${c.impact}. ${c.recommendation || ""}`))));
  }
  return out.length > 1 ? out : out.concat([el("p", { className: "muted" }, "The explanation is empty.")]);
}

// --- charts (inline SVG) -------------------------------------------------------------------------
const W = 600, H = 200, PAD = { l: 30, r: 8, t: 8, b: 20 };
const SVG_NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function drawChart(target, histTs, histValues, forecast, metric) {
  const hist = histTs.map((t, i) => [Date.parse(t + "Z"), histValues[i]]);
  const fts = (forecast.timestamps || []).map((t) => Date.parse(t + "Z"));
  const band = (forecast.bands || {})[metric] || {};
  const p50 = forecast[metric] || [];
  const times = hist.map((h) => h[0]).concat(fts);
  target.replaceChildren();
  if (!times.length) { target.append(svg("text", { x: W / 2 - 40, y: H / 2 })); target.lastChild.textContent = "no data"; return; }
  const t0 = Math.min(...times), t1 = Math.max(...times);
  const x = (t) => PAD.l + (W - PAD.l - PAD.r) * ((t - t0) / Math.max(1, t1 - t0));
  const y = (v) => PAD.t + (H - PAD.t - PAD.b) * (1 - v / 100);
  for (const v of [0, 25, 50, 75, 100]) {
    target.append(svg("line", { class: "grid", x1: PAD.l, x2: W - PAD.r, y1: y(v), y2: y(v) }));
    const label = svg("text", { x: 2, y: y(v) + 3 }); label.textContent = String(v); target.append(label);
  }
  if (band.p10 && band.p90 && fts.length) {
    const upper = fts.map((t, i) => `${x(t)},${y(band.p90[i] ?? 0)}`);
    const lower = fts.map((t, i) => `${x(t)},${y(band.p10[i] ?? 0)}`).reverse();
    target.append(svg("polygon", { class: "band", points: upper.concat(lower).join(" ") }));
  }
  if (hist.length) target.append(svg("polyline", { class: "history", points: hist.map(([t, v]) => `${x(t)},${y(v)}`).join(" ") }));
  if (p50.length) target.append(svg("polyline", { class: "p50", points: fts.map((t, i) => `${x(t)},${y(p50[i] ?? 0)}`).join(" ") }));
  if (hist.length) {
    const now = x(hist[hist.length - 1][0]);
    target.append(svg("line", { class: "now", x1: now, x2: now, y1: PAD.t, y2: H - PAD.b }));
  }
  for (const t of [t0, t1]) {
    const label = svg("text", { x: t === t0 ? PAD.l : W - PAD.r - 62, y: H - 5 });
    label.textContent = new Date(t).toISOString().slice(5, 16).replace("T", " ");
    target.append(label);
  }
}

// --- start -----------------------------------------------------------------------------------
function start() {
  state.key = localStorage.getItem(KEY_STORE);
  if (!state.key) return askForKey();
  $("key-form").hidden = true;
  clearInterval(state.timer);
  refresh().then(() => { if (state.selected && state.predictions[state.selected]) select(state.selected); });
  state.timer = setInterval(refresh, REFRESH_MS);
}

readKeyFromUrl();
start();
