// The public landing page: lists published sections from the public API and
// shows one section's notice. No build step, no dependencies.
import { texts } from "./i18n.js";

const state = { lang: initialLang(), page: 1, perPage: 20, total: 0, q: "", category: "" };

function initialLang() {
  const p = new URLSearchParams(location.search).get("lang");
  if (p === "en" || p === "zh") return p;
  const saved = localStorage.getItem("kaibiao.lang");
  return saved === "en" ? "en" : "zh";
}

function t(key, ...args) {
  const v = texts[state.lang][key] ?? texts.zh[key] ?? key;
  return typeof v === "function" ? v(...args) : v;
}

function applyTexts() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  document.querySelectorAll("[data-lang]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.lang === state.lang)));
  document.title = `${state.lang === "zh" ? "开标" : "kaibiao"} · ${t("title")}`;
}

// Instants arrive as UTC RFC 3339; show them in Asia/Shanghai.
const fmt = () => new Intl.DateTimeFormat(state.lang === "zh" ? "zh-CN" : "en-GB", {
  timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false,
});
const when = (iso) => (iso ? fmt().format(new Date(iso)) : "—");

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return e;
}

async function getJson(url) {
  const r = await fetch(url, { headers: { Accept: "application/json" } });
  if (!r.ok) throw new Error(`${r.status}`);
  return r.json();
}

async function loadList() {
  const rows = document.getElementById("rows");
  const params = new URLSearchParams({ page: state.page, per_page: state.perPage });
  if (state.q) params.set("q", state.q);
  if (state.category) params.set("category", state.category);
  try {
    const data = await getJson(`/api/public/sections?${params}`);
    state.total = data.total;
    rows.replaceChildren();
    if (data.items.length === 0) rows.append(el("tr", {}, el("td", { colspan: 6 }, t("empty"))));
    for (const s of data.items) {
      const link = el("a", { href: `?section=${encodeURIComponent(s.id)}`, onclick: (ev) => { ev.preventDefault(); showSection(s.id, true); } }, s.name);
      rows.append(el("tr", { "data-section": s.id },
        el("td", {}, s.code), el("td", {}, link), el("td", {}, s.project.name),
        el("td", {}, t(`category.${s.project.category}`)), el("td", {}, el("span", { class: `state ${s.state}` }, t(`state.${s.state}`))),
        el("td", {}, when(s.deadline))));
    }
    const pages = Math.max(1, Math.ceil(data.total / state.perPage));
    document.getElementById("page-info").textContent = t("page", state.page, pages, data.total);
    document.getElementById("prev").disabled = state.page <= 1;
    document.getElementById("next").disabled = state.page >= pages;
  } catch {
    rows.replaceChildren(el("tr", {}, el("td", { colspan: 6, class: "error" }, t("error"))));
  }
}

function row(label, value) {
  return el("div", { class: "kv" }, el("dt", {}, label), el("dd", {}, value));
}

async function showSection(id, push) {
  const view = document.getElementById("detail-view");
  if (push) history.pushState({ section: id }, "", `?section=${encodeURIComponent(id)}`);
  document.getElementById("list-view").hidden = true;
  view.hidden = false;
  view.replaceChildren(el("p", {}, t("loading")));
  try {
    const s = await getJson(`/api/public/sections/${encodeURIComponent(id)}`);
    const docs = s.documents.length ? el("ul", { class: "docs" }, ...s.documents.map((d) => el("li", {},
      el("a", { href: `/api/public/sections/${encodeURIComponent(s.id)}/documents/${encodeURIComponent(d.id)}` }, d.name),
      el("span", { class: "muted" }, ` ${(d.size / 1024).toFixed(1)} KiB · SHA-256 `), el("code", {}, d.sha256)))) : t("d.none");
    const amendments = s.amendments.length ? el("ol", {}, ...s.amendments.map((a) => el("li", {},
      el("strong", {}, a.title), ` (${when(a.published_at)}) `, el("p", {}, a.body)))) : t("d.none");
    view.replaceChildren(
      el("button", { type: "button", class: "back", onclick: () => history.back() }, t("back")),
      el("h2", {}, `${s.code} · ${s.name}`),
      el("p", {}, el("span", { class: `state ${s.state}` }, t(`state.${s.state}`))),
      el("dl", {},
        row(t("d.project"), `${s.project.code} ${s.project.name}`),
        row(t("d.centre"), s.project.centre),
        row(t("d.tenderer"), s.project.tenderer),
        row(t("d.deadline"), when(s.deadline)),
        row(t("d.published"), when(s.published_at)),
        row(t("d.mode"), `${t(`mode.${s.decryption_mode}`)}${s.custodian_count ? ` · ${t("d.custodians", s.threshold, s.custodian_count)}` : ""}`),
        row(t("d.window"), t("d.minutes", s.window_minutes)),
        row(t("d.min_bidders"), s.min_bidders),
        row(t("d.ceiling"), s.ceiling_price ?? t("d.none")),
        row(t("d.method"), s.evaluation ? t(`method.${s.evaluation.method}`) : t("d.none")),
        ...(s.cancel_reason ? [row(t("d.cancel_reason"), s.cancel_reason)] : []),
        row(t("d.params"), el("code", {}, s.params_hash ?? "—")),
        row(t("d.room"), el("a", { href: `/room?section=${encodeURIComponent(s.id)}&lang=${state.lang}` }, t("d.room_link")))),
      el("pre", { class: "description" }, s.description),
      el("h3", {}, t("d.documents")), docs,
      el("h3", {}, t("d.amendments")), amendments);
  } catch {
    view.replaceChildren(el("p", { class: "error" }, t("error")));
  }
}

function showList() {
  document.getElementById("detail-view").hidden = true;
  document.getElementById("list-view").hidden = false;
}

function route() {
  const id = new URLSearchParams(location.search).get("section");
  if (id) showSection(id, false); else showList();
}

async function verifyEmail(token) {
  const notice = document.getElementById("notice");
  const r = await fetch("/api/auth/verify-email", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token }),
  });
  notice.hidden = false;
  notice.dataset.i18n = r.ok ? "verify.ok" : "verify.bad";
  notice.textContent = t(notice.dataset.i18n);
  const url = new URL(location.href);
  url.searchParams.delete("verify");
  history.replaceState({}, "", url);
}

document.querySelectorAll("[data-lang]").forEach((b) => b.addEventListener("click", () => {
  state.lang = b.dataset.lang;
  localStorage.setItem("kaibiao.lang", state.lang);
  applyTexts();
  loadList();
  route();
}));
document.getElementById("search").addEventListener("submit", (ev) => {
  ev.preventDefault();
  state.q = document.getElementById("q").value.trim();
  state.category = document.getElementById("category").value;
  state.page = 1;
  loadList();
});
document.getElementById("prev").addEventListener("click", () => { state.page -= 1; loadList(); });
document.getElementById("next").addEventListener("click", () => { state.page += 1; loadList(); });
window.addEventListener("popstate", route);

applyTexts();
const verify = new URLSearchParams(location.search).get("verify");
if (verify) verifyEmail(verify);
loadList();
route();
