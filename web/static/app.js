// The dashboard: a list of calls that keeps itself up to date over the
// all-calls caption socket, and the view of one call (callview.js).

import { $, el, api, ApiError, enc, fmtClock, fmtWhen, providerName, wsURL } from "./util.js";
import { Subscriber } from "./socket.js";
import { CallView, callDuration, normalizeCall, statusText } from "./callview.js";

const PAGE = 100;
// The socket keeps the list current; a periodic reload also repairs
// anything missed while it was down and refreshes ended calls' details.
const REFRESH_MS = 30000;

const state = {
  labels: { inbound: "Caller", outbound: "Agent" },
  calls: new Map(), // call_id -> normalized call
  total: 0,
  loaded: 0,
  selected: null,
  authLost: false,
  filter: "",
};
const items = new Map(); // call_id -> <li>

let view;
let listSub;

const label = (t) => state.labels[t] ?? (t ? t.charAt(0).toUpperCase() + t.slice(1) : "Unknown");

async function boot() {
  $("#media-url").textContent = wsURL("media");
  try {
    const cfg = await api("api/config");
    state.labels = { inbound: cfg.inbound_label, outbound: cfg.outbound_label };
    $("#version").textContent = cfg.version ? `Bridge ${cfg.version}` : "";
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      authLost();
      return;
    }
  }
  view = new CallView({ label, onSocket: updateConn, onCall: (c) => upsertCall(c, true) });

  $("#call-filter").addEventListener("input", (e) => {
    state.filter = e.target.value.trim().toLowerCase();
    renderList();
  });
  $("#more-calls").addEventListener("click", () => loadCalls(true));
  $("#conn-retry").addEventListener("click", () => retryAll());
  $("#banner-action").addEventListener("click", () => location.reload());
  addEventListener("online", () => retryAll());
  document.addEventListener("visibilitychange", () => document.visibilityState === "visible" && retryAll());
  addEventListener("hashchange", () => route(true));

  await loadCalls(false).catch(() => {});
  let opened = false;
  listSub = new Subscriber({
    url: () => wsURL("ws/captions"),
    onEvent: onListEvent,
    // The all-calls socket cannot resume; reload the list when it comes
    // back so that nothing that happened meanwhile is missing.
    onOpen: () => {
      if (opened) loadCalls(false).catch(() => {});
      opened = true;
    },
    onState: updateConn,
  });
  listSub.start();
  route(false);
  setInterval(tick, 1000);
  setInterval(() => !state.authLost && loadCalls(false).catch(() => {}), REFRESH_MS);
}

async function loadCalls(more) {
  const offset = more ? state.loaded : 0;
  let page;
  try {
    page = await api(`api/calls?limit=${PAGE}&offset=${offset}`);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) authLost();
    throw e;
  }
  state.total = page.total;
  state.loaded = Math.max(state.loaded, offset + page.calls.length);
  for (const r of page.calls) upsertCall(normalizeCall(r), false, true);
  renderList();
}

function onListEvent(ev) {
  switch (ev.type) {
    case "call.started":
    case "call.updated":
      upsertCall(normalizeCall({ ...ev, status: "active" }), true);
      break;
    case "call.ended":
      upsertCall({ call_id: ev.call_id, status: "ended", reason: ev.reason, ended_at: ev.ended_at, duration_ms: ev.duration_ms }, true);
      break;
  }
}

const known = (v) => v !== undefined && v !== null && v !== "" &&
  !(Array.isArray(v) && v.length === 0) && !(typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 0);

/**
 * Merge what is known about a call. Events are newer than any list the API
 * returned before them, so a listed "active" never undoes an ended call.
 */
function upsertCall(c, fromEvent, quiet) {
  const old = state.calls.get(c.call_id);
  if (old && !fromEvent && old.status !== "active" && c.status === "active") return;
  // An end of a call never listed: the next reload brings all of it.
  if (!old && !c.started_at) return;
  const merged = { ...(old ?? { tracks: [], custom_parameters: {} }) };
  for (const [k, v] of Object.entries(c)) if (known(v)) merged[k] = v;
  if (!old && fromEvent) {
    state.total++;
    merged.isNew = true;
  }
  state.calls.set(c.call_id, merged);
  if (!quiet) renderList();
}

function matches(c, q) {
  const hay = [c.call_id, c.from, c.to, providerName(c.provider), statusText(c),
    ...Object.entries(c.custom_parameters ?? {}).flat()].join(" ").toLowerCase();
  return hay.includes(q);
}

function startedAt(c) {
  const t = Date.parse(c.started_at);
  return Number.isNaN(t) ? 0 : t;
}

function renderList() {
  const ul = $("#call-list");
  const all = [...state.calls.values()].sort((a, b) => startedAt(b) - startedAt(a) || a.call_id.localeCompare(b.call_id));
  const shown = state.filter ? all.filter((c) => matches(c, state.filter)) : all;
  shown.forEach((c, i) => {
    let li = items.get(c.call_id);
    if (!li) {
      li = newItem(c);
      items.set(c.call_id, li);
    }
    updateItem(li, c);
    if (ul.children[i] !== li) ul.insertBefore(li, ul.children[i] ?? null);
  });
  while (ul.children.length > shown.length) ul.lastElementChild.remove();

  const live = all.filter((c) => c.status === "active").length;
  $("#call-count").textContent = live ? `${live} live` : "";
  const empty = $("#calls-empty");
  empty.hidden = shown.length > 0;
  empty.textContent = all.length ? "No call matches the filter." : "No calls yet.";
  $("#more-calls").hidden = state.loaded >= state.total || state.total <= all.length;
  $("#welcome-setup").hidden = all.length > 0;
  $("#welcome-text").hidden = all.length === 0;
  document.title = `${live ? `(${live} live) ` : ""}Call captions`;
}

function newItem(c) {
  const li = el("li", { class: "call-item", "data-call": c.call_id });
  const link = el("a", { class: "call-link", href: `#/calls/${enc(c.call_id)}` },
    el("span", { class: "dot", "aria-hidden": "true" }),
    el("span", { class: "call-main" }, el("span", { class: "call-id" }), el("span", { class: "call-sub" })),
    el("span", { class: "call-side" }, el("span", { class: "call-dur" }), el("span", { class: "call-when" })),
    el("span", { class: "visually-hidden call-sr" }));
  const details = el("details", { class: "call-params" }, el("summary", {}), el("dl", {}));
  li.append(link, details);
  if (c.isNew) {
    li.classList.add("is-new");
    li.addEventListener("animationend", () => li.classList.remove("is-new"), { once: true });
  }
  return li;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function updateItem(li, c) {
  li.dataset.status = c.status;
  const link = li.firstElementChild;
  li.querySelector(".dot").className = `dot dot-${c.status}${c.reason === "error" ? " dot-error" : ""}`;
  setText(li.querySelector(".call-id"), c.call_id);
  const who = c.from || c.to ? `${c.from || "?"} → ${c.to || "?"}` : "";
  // Status in words too, not only the dot's colour.
  const status = c.status === "ended" ? "" : statusText(c);
  setText(li.querySelector(".call-sub"), [status, providerName(c.provider), who].filter(Boolean).join(" · "));
  setText(li.querySelector(".call-dur"), fmtClock(callDuration(c)));
  setText(li.querySelector(".call-when"), fmtWhen(c.started_at));
  setText(li.querySelector(".call-sr"), c.status === "ended" ? `, ${statusText(c)}` : "");
  if (c.call_id === state.selected) link.setAttribute("aria-current", "page");
  else link.removeAttribute("aria-current");

  const params = Object.entries(c.custom_parameters ?? {}).sort();
  const details = li.querySelector(".call-params");
  details.hidden = params.length === 0;
  link.title = params.length ? params.map(([k, v]) => `${k} = ${v}`).join("\n") : c.call_id;
  const sig = JSON.stringify(params);
  if (details.dataset.sig !== sig) {
    details.dataset.sig = sig;
    details.firstElementChild.textContent = params.length === 1 ? "1 parameter" : `${params.length} parameters`;
    details.lastElementChild.replaceChildren(...params.map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v))));
  }
}

function route(focus) {
  let id = null;
  const m = location.hash.match(/^#\/calls\/(.+)$/);
  if (m) {
    try {
      id = decodeURIComponent(m[1]);
    } catch {
      id = null;
    }
  }
  document.body.classList.toggle("has-call", id !== null);
  $("#welcome").hidden = id !== null;
  if (id !== state.selected) {
    state.selected = id;
    if (id === null) view.close();
    else view.open(id);
    renderList();
  }
  if (focus) (id !== null ? $("#call-title") : $("#call-filter")).focus({ preventScroll: true });
}

function tick() {
  for (const c of state.calls.values()) {
    if (c.status !== "active") continue;
    const li = items.get(c.call_id);
    if (li) setText(li.querySelector(".call-dur"), fmtClock(callDuration(c)));
  }
  view?.tick();
  updateConn();
}

let lastAuthCheck = 0;

/** A socket that keeps failing may mean the token is gone: ask the API. */
function checkAuth() {
  if (state.authLost || Date.now() - lastAuthCheck < 5000) return;
  lastAuthCheck = Date.now();
  api("api/config").catch((e) => {
    if (e instanceof ApiError && e.status === 401) authLost();
  });
}

function authLost() {
  state.authLost = true;
  listSub?.stop();
  view?.sub?.stop();
  $("#banner-text").textContent = "This dashboard needs the bridge’s access token again (it changed, or this browser lost it). Reload to sign in with the link printed at start-up.";
  $("#banner").hidden = false;
  updateConn();
}

function retryAll() {
  listSub?.retryNow();
  view?.sub?.retryNow();
}

function updateConn() {
  const subs = [listSub, view?.sub].filter((s) => s && s.state !== "stopped");
  let st = "connected";
  let text = "Connected";
  let wait = "";
  if (state.authLost) {
    st = "offline";
    text = "Not signed in";
  } else if (subs.some((s) => s.state === "retrying")) {
    st = "reconnecting";
    text = "Reconnecting…";
    const at = Math.min(...subs.filter((s) => s.state === "retrying").map((s) => s.retryAt));
    const secs = Math.ceil((at - Date.now()) / 1000);
    if (secs > 1) wait = `in ${secs} s`;
    checkAuth();
  } else if (subs.length === 0 || subs.some((s) => s.state !== "open")) {
    st = "connecting";
    text = "Connecting…";
  }
  const conn = $("#conn");
  conn.dataset.state = st;
  conn.dataset.reconnects = String(subs.reduce((n, s) => n + s.reconnects, 0));
  setText($("#conn-text"), text);
  setText($("#conn-wait"), wait);
  $("#conn-retry").hidden = st !== "reconnecting";
}

boot();
