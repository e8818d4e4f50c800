// The opening room (不见面开标), as the public sees it: follows the room's
// WebSocket (docs/PROTOCOL.md §13), resumes after a break without missing an
// event, and counts down on the server's clock. No build step.
import { texts } from "./i18n.js";

const params = new URLSearchParams(location.search);
const section = params.get("section") ?? "";
const state = {
  lang: params.get("lang") === "en" ? "en" : params.get("lang") === "zh" ? "zh" : (localStorage.getItem("kaibiao.lang") === "en" ? "en" : "zh"),
  room: null, seq: 0, clock: null, presence: null, events: [], retry: 0, resyncAt: 0, pending: null,
};

const t = (key, ...args) => {
  const v = texts[state.lang][key] ?? texts.zh[key] ?? key;
  return typeof v === "function" ? v(...args) : v;
};
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return e;
}

const fmt = (withSeconds) => new Intl.DateTimeFormat(state.lang === "zh" ? "zh-CN" : "en-GB", {
  timeZone: "Asia/Shanghai", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  ...(withSeconds ? { second: "2-digit" } : {}), hour12: false,
});
const when = (ms, s = false) => (ms ? fmt(s).format(new Date(ms)) : "—");

// The server's time now: its clock at `hello`, advanced at its rate.
function serverNow() {
  if (!state.clock) return Date.now();
  return state.clock.now_ms + (Date.now() - state.clock.local) * state.clock.rate;
}

function span(ms) {
  if (ms <= 0) return "00:00";
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  const pad = (n) => String(n).padStart(2, "0");
  return d > 0 ? t("room.days", d, pad(h), pad(m)) : `${pad(h)}:${pad(m)}:${pad(s % 60)}`;
}

function tick() {
  const r = state.room;
  if (!r) return;
  let label = "", target = null;
  if (r.phase === "published") { label = t("room.until_deadline"); target = r.section.deadline_ms; }
  else if (r.phase === "decrypting" && r.window && !r.window.closed_at_ms) {
    label = r.window.paused_since_ms ? t("room.paused") : t("room.until_window");
    target = r.window.paused_since_ms ? null : r.window.ends_at_ms;
  }
  $("countdown-label").textContent = label;
  $("countdown").textContent = target ? span(target - serverNow()) : "";
}

function render() {
  const r = state.room;
  if (!r) return;
  $("room-section").textContent = `${r.section.code} · ${r.section.name} · ${r.section.project_name}`;
  const phase = $("phase");
  phase.className = `state ${r.phase}`;
  phase.textContent = t(`state.${r.phase}`);
  $("link").textContent = t("room.deadline", when(r.section.deadline_ms));
  if (state.presence) {
    const c = state.presence;
    $("presence").textContent = t("room.online", Object.values(c).reduce((a, b) => a + b, 0), c.bidder ?? null);
  }

  // The bid board: after the deadline, who bid and how each stands.
  const bids = $("bids");
  bids.replaceChildren(el("tr", {}, el("th", {}, t("room.bidder")), el("th", {}, t("room.status")), el("th", {}, t("room.settled_at"))));
  if (r.bids.length === 0) {
    bids.append(el("tr", {}, el("td", { colspan: 3, class: "muted" }, r.phase === "published" ? t("room.sealed_until") : t("room.none"))));
  }
  for (const b of r.bids) {
    bids.append(el("tr", { "data-bid": b.envelope_hash },
      el("td", {}, b.name || b.bidder),
      el("td", {}, el("span", { class: `state bid-${b.status}` }, t(`bid.${b.status}`)),
        b.fault ? el("span", { class: "muted" }, ` (${t(`fault.${b.fault}`)})`) : ""),
      el("td", {}, when(b.at_ms, true))));
  }

  // The record (唱标): every result at once.
  const rec = r.record;
  $("record-view").hidden = !rec;
  if (rec) {
    const fields = rec.summary_fields ?? [];
    const table = $("record");
    table.replaceChildren(el("tr", {}, el("th", {}, t("room.bidder")),
      ...fields.map((f) => el("th", {}, f.label ?? f.key)), el("th", {}, t("room.status"))));
    for (const b of rec.bids) {
      table.append(el("tr", { "data-record-bid": b.bidder },
        el("td", {}, b.bidder_name || b.bidder),
        ...fields.map((f) => el("td", { class: "num" }, b.summary ? (b.summary[f.key] ?? "—") : "—")),
        el("td", {}, t(`bid.${b.status}`))));
    }
    $("record-hash").textContent = r.record_hash ?? "";
    $("record-print").href = `/api/public/sections/${encodeURIComponent(section)}/opening-record.html`;
  }

  const objections = r.objections ?? [];
  $("objections-view").hidden = objections.length === 0;
  $("objections").replaceChildren(...objections.map((o) => el("li", {},
    el("strong", {}, o.name || o.bidder), `：${o.text}`,
    o.answer ? el("p", { class: "answer" }, `${t("room.answer")}${o.answer}`) : el("p", { class: "muted" }, t("room.awaiting")))));
  $("notices").replaceChildren(...[...(r.notices ?? [])].reverse().map((n) =>
    el("li", {}, el("span", { class: "muted" }, `${when(n.at_ms, true)} `), n.text)));
  $("events").replaceChildren(...state.events.slice(-30).reverse().map((e) =>
    el("li", {}, el("span", { class: "muted" }, `${when(e.at_ms, true)} `), t(`ev.${e.kind}`))));
  tick();
}

function applyTexts() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach((e) => { e.textContent = t(e.dataset.i18n); });
  document.querySelectorAll("[data-lang]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.lang === state.lang)));
  document.title = `${t("room.title")} · kaibiao`;
  render();
}

function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  // The first time from the beginning (the log of what happened); after a
  // break, from the last event seen.
  const after = state.events.length ? state.events[state.events.length - 1].seq : 0;
  const ws = new WebSocket(`${proto}//${location.host}/api/sections/${encodeURIComponent(section)}/room?after=${after}`);
  ws.onmessage = (m) => {
    const f = JSON.parse(m.data);
    if (f.type === "hello") {
      state.clock = { now_ms: f.clock.now_ms, rate: f.clock.rate, local: Date.now() };
      state.retry = 0;
    } else if (f.type === "snapshot") {
      state.room = f.state;
      state.seq = f.seq;
      render();
    } else if (f.type === "event") {
      state.seq = Math.max(state.seq, f.seq);
      const lastSeen = state.events.length ? state.events[state.events.length - 1].seq : 0;
      if (f.seq > lastSeen) state.events.push(f);
      // The snapshot is the state: ask for a fresh one, at most twice a
      // second (well within the room's rate limit).
      if (!state.pending) {
        const wait = Math.max(0, 500 - (Date.now() - state.resyncAt));
        state.pending = setTimeout(() => {
          state.pending = null;
          state.resyncAt = Date.now();
          if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "resync" }));
        }, wait);
      }
      render();
    } else if (f.type === "presence") {
      state.presence = f.counts;
      render();
    }
  };
  ws.onclose = () => {
    state.retry = Math.min(state.retry + 1, 6);
    setTimeout(connect, 500 * 2 ** state.retry);
  };
}

document.querySelectorAll("[data-lang]").forEach((b) => b.addEventListener("click", () => {
  state.lang = b.dataset.lang;
  localStorage.setItem("kaibiao.lang", state.lang);
  applyTexts();
}));
// The room as of now over plain HTTP first (shown at once, and where a
// proxy refuses WebSockets), then live from the socket after it.
async function start() {
  try {
    const r = await fetch(`/api/sections/${encodeURIComponent(section)}/opening`, { headers: { Accept: "application/json" } });
    if (r.ok) {
      const v = await r.json();
      state.room = v.state;
      state.seq = v.seq;
      state.clock = { now_ms: v.clock.now_ms, rate: v.clock.rate, local: Date.now() };
      render();
    } else {
      $("room-section").textContent = t("room.not_found");
    }
  } catch {
    // The socket below still tries.
  }
  connect();
  setInterval(tick, 250);
}

applyTexts();
if (section) {
  start();
} else {
  $("room-section").textContent = t("room.no_section");
}
