// gripd's live status page. It reads GET /status/events, a Server-Sent
// Events stream of one JSON sample a second (the last minutes first), and
// draws the tiles, the SVG charts and the busiest channels from it. Plain
// JavaScript, no libraries: the page is embedded in the gripd binary.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const CHART_HEIGHT = 120;
const PAD = { left: 44, right: 8, top: 8, bottom: 18 };

let intervalMS = 1000;
let windowMS = 5 * 60 * 1000;
const samples = []; // oldest first, within windowMS of the newest

// What each chart draws: one line per series, in the series' colour.
const CHARTS = {
  held: [
    { value: (s) => s.held.stream, cls: "k-stream" },
    { value: (s) => s.held.ws, cls: "k-ws" },
    { value: (s) => s.held.response, cls: "k-response" },
  ],
  channels: [{ value: (s) => s.channels, cls: "k-one" }],
  publishes: [{ value: (s) => s.publishes_per_s, cls: "k-one" }],
  deliveries: [{ value: (s) => s.deliveries_per_s, cls: "k-one" }],
  drops: [
    { value: (s) => s.slow_per_s, cls: "k-slow" },
    { value: (s) => s.dropped_per_s, cls: "k-dropped" },
  ],
  errors: [{ value: (s) => s.backend_errors_per_s, cls: "k-slow" }],
};

const $ = (id) => document.getElementById(id);

function count(n) {
  return Number(n).toLocaleString("en-US");
}

function rate(r) {
  if (r === 0) return "0";
  if (r < 10) return r.toFixed(1);
  return count(Math.round(r));
}

function setState(state, text) {
  $("state").dataset.state = state;
  $("state").textContent = text;
}

// ---- the numbers of the newest sample

function showNow(s) {
  const held = s.held.response + s.held.stream + s.held.ws;
  $("held-total").textContent = count(held);
  $("held-stream").textContent = count(s.held.stream);
  $("held-ws").textContent = count(s.held.ws);
  $("held-response").textContent = count(s.held.response);
  $("channels").textContent = count(s.channels);
  $("publishes").textContent = rate(s.publishes_per_s);
  $("publishes-total").textContent = count(s.totals.publishes);
  $("deliveries").textContent = rate(s.deliveries_per_s);
  $("deliveries-total").textContent = count(s.totals.deliveries);
  $("drops").textContent = rate(s.slow_per_s);
  $("drops-total").textContent = count(s.totals.slow);
  $("dropped-total").textContent = count(s.totals.dropped);
  $("backend-errors").textContent = rate(s.backend_errors_per_s);
  $("backend-errors-total").textContent = count(s.totals.backend_errors);
  $("updated").textContent = "updated " + new Date(s.t).toLocaleTimeString();
  showTop(s.top || []);
}

// Channel names are whatever clients asked for: text only, never markup.
function showTop(top) {
  const tbody = $("top").tBodies[0];
  const rows = [];
  for (const c of top) {
    const tr = document.createElement("tr");
    for (const v of [c.name, count(c.stream), count(c.ws), count(c.response), count(c.total)]) {
      const td = document.createElement("td");
      td.textContent = v;
      tr.append(td);
    }
    rows.push(tr);
  }
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    tr.className = "empty";
    const td = document.createElement("td");
    td.colSpan = 5;
    td.textContent = "no channel has a held connection";
    tr.append(td);
    rows.push(tr);
  }
  tbody.replaceChildren(...rows);
}

// ---- charts

// niceCeiling rounds up to 1, 2 or 5 times a power of ten, so the axis
// reads well.
function niceCeiling(v) {
  if (v <= 1) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function el(name, attrs, text) {
  const e = document.createElementNS(SVG_NS, name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}

function drawChart(fig, series) {
  const width = Math.max(200, Math.floor(fig.clientWidth - 30));
  const plotW = width - PAD.left - PAD.right;
  const plotH = CHART_HEIGHT - PAD.top - PAD.bottom;
  const end = samples.length ? samples[samples.length - 1].t : Date.now();
  const start = end - windowMS;
  let max = 0;
  for (const s of samples) for (const ser of series) max = Math.max(max, ser.value(s));
  const top = niceCeiling(max);
  const x = (t) => PAD.left + ((t - start) / windowMS) * plotW;
  const y = (v) => PAD.top + plotH - (v / top) * plotH;

  const svg = el("svg", { viewBox: `0 0 ${width} ${CHART_HEIGHT}`, role: "img" });
  for (const v of [0, top / 2, top]) {
    svg.append(el("line", { class: "grid", x1: PAD.left, x2: width - PAD.right, y1: y(v), y2: y(v) }));
    svg.append(el("text", { class: "axis", x: PAD.left - 6, y: y(v) + 3, "text-anchor": "end" }, rate(v)));
  }
  svg.append(el("text", { class: "axis", x: PAD.left, y: CHART_HEIGHT - 4 }, `${Math.round(windowMS / 60000)} min ago`));
  svg.append(el("text", { class: "axis", x: width - PAD.right, y: CHART_HEIGHT - 4, "text-anchor": "end" }, "now"));

  // A gap of more than a few intervals (nobody was watching, so nothing
  // was sampled) breaks the line instead of drawing a slope across it.
  const gap = 2.5 * intervalMS;
  for (const ser of series) {
    let d = "";
    let prevT = null;
    for (const s of samples) {
      const cmd = prevT === null || s.t - prevT > gap ? "M" : "L";
      d += `${cmd}${x(s.t).toFixed(1)},${y(ser.value(s)).toFixed(1)}`;
      prevT = s.t;
    }
    if (series.length === 1 && samples.length > 1) {
      const first = samples[0].t;
      svg.append(el("path", { class: "area " + ser.cls, d: `${d}L${x(end)},${y(0)}L${x(first)},${y(0)}Z` }));
    }
    svg.append(el("path", { class: "line " + ser.cls, d: d }));
  }
  const old = fig.querySelector("svg");
  if (old) old.replaceWith(svg);
  else fig.append(svg);
}

let drawPending = false;
function scheduleDraw() {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    for (const fig of document.querySelectorAll(".chart")) drawChart(fig, CHARTS[fig.dataset.chart]);
  });
}
window.addEventListener("resize", scheduleDraw);

// ---- the stream

function addSample(s) {
  // After a reconnect the history comes again: keep only what is new.
  if (samples.length && s.t <= samples[samples.length - 1].t) return;
  samples.push(s);
  while (samples.length && samples[0].t < s.t - windowMS) samples.shift();
  showNow(s);
  scheduleDraw();
}

const es = new EventSource("/status/events");
es.onopen = () => setState("live", "live");
es.onerror = () => setState("error", "reconnecting\u2026");
es.addEventListener("info", (ev) => {
  const info = JSON.parse(ev.data);
  intervalMS = info.interval_ms;
  windowMS = info.window_seconds * 1000;
  $("version").textContent = "gripd " + info.version + " (" + info.go_version + ")";
});
es.onmessage = (ev) => addSample(JSON.parse(ev.data));
scheduleDraw();
