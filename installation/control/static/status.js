// The status page: /api/status once a second (the show's health counters, the same figures as the stats
// JSON and the heartbeat), and the output's thumbnail when the show allows it.
"use strict";
const $ = (id) => document.getElementById(id);
const history = [];
let thumbOn = true;

function dur(s) {
  s = Math.floor(s);
  const d = Math.floor(s / 86400), hh = Math.floor(s / 3600) % 24, mm = Math.floor(s / 60) % 60;
  return d ? `${d}d ${hh}h` : hh ? `${hh}h ${mm}m` : `${mm}m ${s % 60}s`;
}

const ms = (v) => (v === null || v === undefined ? "–" : `${Math.round(v)}`);

function spark(values) {
  const c = $("spark"), g = c.getContext("2d"), w = c.width, h = c.height;
  g.clearRect(0, 0, w, h);
  const top = Math.max(30, ...values) * 1.1;
  g.beginPath();
  values.forEach((v, i) => {
    const x = (i / Math.max(1, values.length - 1)) * w, y = h - (v / top) * h;
    i ? g.lineTo(x, y) : g.moveTo(x, y);
  });
  g.strokeStyle = "#ff7a59";
  g.lineWidth = 2;
  g.stroke();
}

function show(s) {
  $("show-name").textContent = s.show || "installation";
  document.title = `${s.show} · status`;
  $("uptime").textContent = `up ${dur(s.uptime_s)}`;
  $("fps").textContent = Number(s.fps).toFixed(1);
  history.push(s.fps);
  if (history.length > 120) history.shift();
  spark(history);
  const lat = s.latency_ms || {};
  $("p50").textContent = `${ms(lat.p50)} ms`;
  $("lat").textContent = `p95 ${ms(lat.p95)} · p99 ${ms(lat.p99)} ms`;
  $("dropped").textContent = s.dropped;
  $("frames").textContent = `${s.frames_presented} presented · ${s.frames_held} held`;
  $("reconnects").textContent = s.reconnects;
  $("source").textContent = s.source_connected ? "source connected" : "source lost";
  $("source").className = s.source_connected ? "s" : "s bad";
  $("memory").textContent = Math.round(s.rss_mb);
  $("model").textContent = s.model || "none";
  $("model-error").textContent = s.model_error || "";
  $("model-error").className = s.model_error ? "s bad" : "s";
  $("look").textContent = s.schedule ? s.schedule.look : "–";
  $("why").textContent = s.schedule ? s.schedule.why : "";
  const web = s.web || {};
  $("clients").textContent = web.clients ?? "–";
  // every refusal of the web server (connections, Host, Origin, what clients sent) in one figure
  const webRefused = Object.entries(web).filter(([k]) => k.startsWith("refused")).reduce((n, [, v]) => n + v, 0);
  $("osc").textContent = `web clients (refused ${webRefused}) · OSC in ${s.osc ? s.osc.accepted : 0}, ` +
    `refused ${s.osc ? s.osc.rejected : 0}`;
  $("state").textContent = [s.blackout && "blackout", s.freeze && "frozen", s.preset && `preset ${s.preset}`]
    .filter(Boolean).join(" · ");
  const faults = Object.entries(s.faults || {});
  $("errors").textContent = s.errors ? `${s.errors} in all` : "none";
  $("faults").replaceChildren(...faults.map(([k, n]) => {
    const li = document.createElement("li");
    li.innerHTML = "<span></span><span class='bad'></span>";
    li.children[0].textContent = k;
    li.children[1].textContent = n;
    return li;
  }));
  $("last-fault").textContent = s.last_fault ? `last: ${s.last_fault}` : "";
}

async function tick() {
  try {
    const r = await fetch("/api/status", {credentials: "same-origin"});
    show(await r.json());
    $("link").classList.add("on");
  } catch (e) {
    $("link").classList.remove("on");
  }
  if (thumbOn) {
    const img = new Image();
    img.onload = () => { $("thumb").src = img.src; };
    img.src = `/api/thumbnail.jpg?t=${Date.now()}`;
  }
  setTimeout(tick, 1000);
}

(async () => {
  try {
    const info = await (await fetch("/api/info", {credentials: "same-origin"})).json();
    thumbOn = info.thumbnail;
    if (!thumbOn) {
      $("thumb").hidden = true;
      $("thumb-note").textContent = "No thumbnail: this show keeps pictures of the room on the machine ([web] thumbnail = false).";
    }
  } catch (e) { /* tick() says the show is unreachable */ }
  tick();
})();
