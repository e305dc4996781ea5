// The panel: an OSCQuery client. It reads the tree (/api/tree), builds a control for every parameter,
// listens on the WebSocket (LISTEN "/") and sends values as binary OSC, so it changes the show exactly as
// any OSC controller does. Every control carries data-address="/the/osc/address".
"use strict";
const $ = (sel, el = document) => el.querySelector(sel);
const token = new URLSearchParams(location.search).get("token");
const FRONT = new Set(["/show/blackout", "/show/freeze", "/model/select", "/model/crossfade", "/preset/save",
  "/preset/recall", "/preset/next", "/preset/prev"]);
const TITLES = {pre: "Input", post: "Output smoothing", seg: "Segmentation", mix: "Mix", display: "Display",
  colour: "Colour", hud: "HUD", show: "Show", model: "Model", preset: "Presets", midi: "MIDI", output: "Outputs"};
const OPEN = new Set(["mix", "colour"]);

let ws = null, info = {can_write: true, writes: true}, tree = null, retry = 500;
const setters = new Map();   // address -> [fn(value)]
const latest = new Map();    // address -> the newest value the show reported
const holding = new Set();   // addresses under a finger: pushes wait until it lets go
const outbox = new Map();    // address -> OSC args, sent once per animation frame
let flushQueued = false;

function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") el.className = v; else if (k === "text") el.textContent = v; else el.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) el.append(k);
  return el;
}

function toast(msg) {
  const t = $("#toast");
  t.textContent = msg;
  t.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove("show"), 3500);
}

function argsFor(node, v) {
  switch (node.TYPE) {
    case "f": return [["f", Number(v)]];
    case "i": return [["i", Math.round(Number(v))]];
    case "T": return [[v ? "T" : "F"]];
    case "s": return [["s", String(v)]];
    default: return [];
  }
}

function send(address, args) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(OSC.message(address, args));
}

function queue(address, args) {
  outbox.set(address, args);
  if (!flushQueued) { flushQueued = true; requestAnimationFrame(flush); }
}

function flush() {
  flushQueued = false;
  for (const [a, args] of outbox) send(a, args);
  outbox.clear();
}

function bind(address, fn) {
  if (!setters.has(address)) setters.set(address, []);
  setters.get(address).push(fn);
  if (latest.has(address)) fn(latest.get(address));
}

function apply(address, value) {
  latest.set(address, value);
  if (holding.has(address)) return;
  for (const fn of setters.get(address) || []) fn(value);
  if (address === "/model/select") markModels();
}

function hold(el, address) {
  const up = () => {
    setTimeout(() => { holding.delete(address); if (latest.has(address)) apply(address, latest.get(address)); }, 250);
  };
  el.addEventListener("pointerdown", () => holding.add(address));
  el.addEventListener("pointerup", up);
  el.addEventListener("pointercancel", up);
}

function fmt(v, node) {
  if (node.TYPE === "i") return String(Math.round(v));
  const [r] = node.RANGE, span = r.MAX - r.MIN;
  return Number(v).toFixed(span <= 2 ? 2 : span <= 50 ? 1 : 0);
}

function leaves(node, out = []) {
  if (node.CONTENTS) for (const c of Object.values(node.CONTENTS)) leaves(c, out);
  else if (node.TYPE && node.ACCESS & 2) out.push(node);
  return out;
}

// ---- one control per parameter --------------------------------------------------------------------
function slider(node) {
  const [r] = node.RANGE, lo = r.MIN, hi = r.MAX;
  const input = h("input", {type: "range", min: lo, max: hi, step: node.TYPE === "i" ? 1 : (hi - lo) / 1000,
    "data-address": node.FULL_PATH, "aria-label": node.FULL_PATH});
  const val = h("span", {class: "val"});
  const show = (v) => {
    input.value = v;
    val.textContent = fmt(v, node);
    input.style.setProperty("--fill", `${((v - lo) / (hi - lo || 1)) * 100}%`);
  };
  input.addEventListener("input", () => { show(Number(input.value)); queue(node.FULL_PATH, argsFor(node, input.value)); });
  hold(input, node.FULL_PATH);
  bind(node.FULL_PATH, show);
  return [input, val];
}

function toggle(node) {
  const input = h("input", {type: "checkbox", "data-address": node.FULL_PATH, "aria-label": node.FULL_PATH});
  input.addEventListener("change", () => send(node.FULL_PATH, argsFor(node, input.checked)));
  bind(node.FULL_PATH, (v) => { input.checked = !!v; });
  return [h("label", {class: "switch"}, input, h("span")), null];
}

function choice(node) {
  const vals = node.RANGE[0].VALS;
  if (vals.length > 6) {
    const sel = h("select", {"data-address": node.FULL_PATH, "aria-label": node.FULL_PATH},
      ...vals.map((v) => h("option", {value: v, text: v})));
    sel.addEventListener("change", () => send(node.FULL_PATH, argsFor(node, sel.value)));
    bind(node.FULL_PATH, (v) => { sel.value = v; });
    return [sel, null];
  }
  const seg = h("div", {class: "seg", "data-address": node.FULL_PATH});
  for (const v of vals) {
    const b = h("button", {type: "button", "data-address": node.FULL_PATH, "data-value": v, text: v});
    b.addEventListener("click", () => send(node.FULL_PATH, argsFor(node, v)));
    seg.append(b);
  }
  bind(node.FULL_PATH, (v) => seg.querySelectorAll("button").forEach((b) => b.classList.toggle("on", b.dataset.value === v)));
  return [seg, null];
}

function trigger(node) {
  const name = node.FULL_PATH.split("/").pop().replace(/_/g, " ");
  if (node.TYPE === "i") {
    const [r] = node.RANGE;
    const n = h("input", {type: "number", min: r.MIN, max: r.MAX, value: r.MIN, inputmode: "numeric"});
    const b = h("button", {class: "trig", type: "button", "data-address": node.FULL_PATH, text: name});
    b.addEventListener("click", () => send(node.FULL_PATH, [["i", Number(n.value)]]));
    return [h("div", {class: "row"}, n, b), null];
  }
  const b = h("button", {class: "trig", type: "button", "data-address": node.FULL_PATH, text: name});
  b.addEventListener("click", () => send(node.FULL_PATH, []));
  return [b, null];
}

function text(node) {
  const input = h("input", {type: "text", "data-address": node.FULL_PATH, "aria-label": node.FULL_PATH,
    placeholder: "empty", autocapitalize: "off", autocomplete: "off", spellcheck: "false"});
  input.addEventListener("change", () => send(node.FULL_PATH, argsFor(node, input.value)));
  bind(node.FULL_PATH, (v) => { if (document.activeElement !== input) input.value = v; });
  return [h("div", {class: "row"}, input), null];
}

function control(node) {
  const kind = node.TYPE === "T" ? toggle : node.TYPE === "I" || !(node.ACCESS & 1) ? trigger
    : node.RANGE && node.RANGE[0].VALS && node.TYPE === "s" ? choice : node.TYPE === "s" ? text : slider;
  const [widget, val] = kind(node);
  const path = node.FULL_PATH.split("/").slice(2).join("/").replace(/_/g, " ");
  const unit = node.UNIT ? h("span", {class: "unit", text: node.UNIT[0]}) : null;
  const inline = kind === toggle || (kind === trigger && node.TYPE === "I");
  const head = h("div", {class: "head"}, h("span", {class: "name"}, path, unit), inline ? widget : val);
  return h("div", {class: "param", "data-param": node.FULL_PATH}, head,
    h("div", {class: "desc", text: node.DESCRIPTION || ""}), inline ? null : widget);
}

// ---- the page -----------------------------------------------------------------------------------------
function build() {
  const groups = $("#groups");
  groups.textContent = "";
  setters.clear();
  const byGroup = new Map();
  for (const node of leaves(tree)) {
    if (FRONT.has(node.FULL_PATH) || node.TYPE === "N") continue;
    const g = node.FULL_PATH.split("/")[1];
    if (!byGroup.has(g)) byGroup.set(g, []);
    byGroup.get(g).push(node);
  }
  for (const [g, nodes] of byGroup) {
    const title = h("summary", {}, h("span", {}, `${TITLES[g] || g} · ${g}/`, h("span", {class: "count", text: nodes.length})));
    const det = h("details", {class: "group", "data-group": g}, title, ...nodes.map(control));
    if (OPEN.has(g)) det.open = true;
    groups.append(det);
  }
  for (const id of ["blackout", "freeze"]) {
    const b = $("#" + id), address = b.dataset.address;
    b.onclick = () => send(address, [[b.getAttribute("aria-pressed") === "true" ? "F" : "T"]]);
    bind(address, (v) => { b.setAttribute("aria-pressed", String(!!v)); b.querySelector(".big-state").textContent = v ? "on" : "off"; });
  }
  const cross = find("/model/crossfade");
  if (cross) $("#crossfade-slot").replaceChildren(control(cross));
  document.querySelectorAll(".presets-nav [data-address$=next], .presets-nav [data-address$=prev]")
    .forEach((b) => { b.onclick = () => send(b.dataset.address, []); });
  $("#save").onclick = () => send("/preset/save", [["i", Number($("#slot").value)]]);
  $("#recall").onclick = () => send("/preset/recall", [["i", Number($("#slot").value)]]);
  dynamic();
  values();
  lock();
}

function find(address) {
  let node = tree;
  for (const part of address.split("/").slice(1)) node = node && node.CONTENTS && node.CONTENTS[part];
  return node;
}

function values() {
  for (const node of leaves(tree)) if (node.VALUE && node.ACCESS & 1) apply(node.FULL_PATH, node.VALUE[0]);
}

// the parts of the tree that follow the disk: the models to select, the presets saved
function dynamic() {
  const sel = find("/model/select"), rec = find("/preset/recall");
  const models = (sel && sel.RANGE && sel.RANGE[0].VALS) || [];
  $("#models").replaceChildren(...models.map((m) => {
    const b = h("button", {class: "chip", type: "button", "data-address": "/model/select", "data-value": m, text: m});
    b.onclick = () => send("/model/select", [["s", m]]);
    return b;
  }));
  if (!models.length) $("#models").append(h("span", {class: "desc", text: "no models in the show's folders"}));
  const slots = (rec && rec.RANGE && rec.RANGE[0].VALS) || [];
  $("#presets").replaceChildren(...slots.map((n) => {
    const b = h("button", {class: "chip", type: "button", "data-address": "/preset/recall", "data-value": n, text: n});
    b.onclick = () => send("/preset/recall", [["i", n]]);
    return b;
  }));
  if (!slots.length) $("#presets").append(h("span", {class: "desc", text: "none saved yet"}));
  markModels();
  lock();
}

function markModels(playing) {
  if (playing !== undefined) markModels.playing = playing;
  const chosen = latest.get("/model/select") || markModels.playing;
  document.querySelectorAll("#models .chip").forEach((b) => b.classList.toggle("on", b.dataset.value === chosen));
  $("#model-now").textContent = markModels.playing ? `playing ${markModels.playing}` : "";
}

function lock() {
  $("#lock").hidden = info.can_write;
  $("#save").hidden = !(info.writes && info.can_write);
  if (!info.can_write) document.querySelectorAll("main [data-address], main input, main select").forEach((el) => { el.disabled = true; });
}

async function load() {
  tree = await (await fetch("/api/tree", {credentials: "same-origin"})).json();
  if (!$("#groups").childElementCount) build(); else { dynamic(); values(); }
}

function connect() {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws${token ? `?token=${encodeURIComponent(token)}` : ""}`;
  ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  ws.onopen = async () => {
    retry = 500;
    $("#link").classList.add("on");
    ws.send(JSON.stringify({COMMAND: "LISTEN", DATA: "/"}));
    await load();
    document.body.dataset.ready = "1";
  };
  ws.onmessage = (ev) => {
    if (typeof ev.data !== "string") {
      for (const m of OSC.parse(ev.data)) apply(m.address, m.args[0]);
      return;
    }
    const doc = JSON.parse(ev.data);
    if (doc.COMMAND === "ERROR") toast(doc.DATA);
    else if (String(doc.COMMAND).startsWith("PATH_")) load();
  };
  ws.onclose = () => {
    $("#link").classList.remove("on");
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 5000);
  };
}

async function poll() {
  try {
    const s = await (await fetch("/api/status", {credentials: "same-origin"})).json();
    $("#fps").textContent = s.fps !== undefined ? `${Number(s.fps).toFixed(1)} fps` : "– fps";
    markModels(s.model || "");
    $("#preset-now").textContent = s.preset ? `last ${s.preset}` : "";
  } catch (e) { /* the socket's state says enough */ }
  setTimeout(poll, 1000);
}

(async () => {
  try {
    info = await (await fetch("/api/info", {credentials: "same-origin"})).json();
    $("#show-name").textContent = info.name;
    document.title = `${info.name} · panel`;
  } catch (e) { toast("can't reach the show"); }
  connect();
  poll();
})();
