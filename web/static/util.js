// Small helpers shared by the dashboard's modules.

/** querySelector with an optional root. */
export const $ = (sel, root = document) => root.querySelector(sel);

/**
 * el builds an element: attributes (null/false skipped, true = empty), then
 * children (strings become text nodes; null is skipped). Never parses HTML.
 */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

const pad = (n) => String(n).padStart(2, "0");

/** Call-clock time as mm:ss, or h:mm:ss from an hour on. */
export function fmtClock(ms) {
  const s = Math.max(0, Math.floor((Number(ms) || 0) / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${pad(m)}:${pad(s % 60)}`;
}

/** A length of time in words for screen readers and notes: "1.5 s", "2 min 3 s". */
export function fmtSpan(ms) {
  ms = Math.max(0, Number(ms) || 0);
  if (ms < 10000) return `${(ms / 1000).toFixed(ms < 1000 ? 2 : 1).replace(/\.?0+$/, "")} s`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

/** Wall-clock time of day, with the date when it is not today. */
export function fmtWhen(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const today = new Date();
  return d.toDateString() === today.toDateString() ? timeFmt.format(d) : dateTimeFmt.format(d);
}

export function fmtFull(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : fullFmt.format(d);
}

const providers = {
  twilio: "Twilio", signalwire: "SignalWire", plivo: "Plivo", vobiz: "Vobiz",
  telnyx: "Telnyx", exotel: "Exotel", vonage: "Vonage",
};

export function providerName(p) {
  if (!p) return "Unknown provider";
  return providers[p] ?? p.charAt(0).toUpperCase() + p.slice(1);
}

/** A track name as a CSS class fragment. */
export const trackClass = (t) => String(t).toLowerCase().replace(/[^a-z0-9-]/g, "-");

// Offset of the server's clock from ours, learned from Date headers, so
// that durations of live calls do not depend on the viewer's clock.
let skewMs = 0;

/** Now on the server's clock, in ms since the epoch. */
export const serverNow = () => Date.now() + skewMs;

/** ApiError is a failed API request; status 0 means no answer at all. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** GET a JSON document from the bridge (same origin: the cookie rides along). */
export async function api(path) {
  let r;
  try {
    r = await fetch(path, { headers: { Accept: "application/json" }, cache: "no-store" });
  } catch (e) {
    throw new ApiError(0, `The bridge did not answer (${e.message}).`);
  }
  const date = Date.parse(r.headers.get("Date") ?? "");
  if (!Number.isNaN(date)) skewMs = date - Date.now();
  if (!r.ok) {
    let msg = `${r.status} ${r.statusText}`;
    try {
      msg = (await r.json()).error ?? msg;
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(r.status, msg);
  }
  return r.json();
}

/** The URL of a caption socket path relative to the page. */
export function wsURL(path) {
  const u = new URL(path, location.href);
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  return u.href;
}

export const enc = encodeURIComponent;
