// One call: its header, live captions over a resumable socket, and once it
// has ended the recordings, transcript search and downloads.

import { $, el, api, ApiError, enc, fmtClock, fmtFull, fmtWhen, providerName, serverNow, wsURL } from "./util.js";
import { Subscriber } from "./socket.js";
import { Timeline } from "./timeline.js";
import { Player } from "./player.js";

// Close codes of /ws/captions (web/captions.go).
const CLOSE_CALL_ENDED = 1000;
const CLOSE_NOT_STARTED = 4004;
const CLOSE_REFUSED = 1008; // a request the bridge will never accept: retrying cannot help

const REASONS = {
  stop: "Ended",
  disconnect: "Ended: the stream disconnected",
  shutdown: "Ended: the bridge shut down",
  timeout: "Ended: timed out",
  error: "Ended with an error",
};

/** A call record from the API or from call.* events, in one shape. */
export function normalizeCall(r) {
  return {
    call_id: r.call_id,
    provider: r.provider,
    status: r.status ?? "active",
    reason: r.reason,
    error: r.error,
    started_at: r.started_at,
    ended_at: r.ended_at,
    duration_ms: r.duration_ms,
    from: r.from,
    to: r.to,
    custom_parameters: r.custom_parameters ?? {},
    tracks: (r.tracks ?? []).map((t) => (typeof t === "string" ? t : t.name)),
    trackInfo: (r.tracks ?? []).filter((t) => typeof t === "object"),
  };
}

/** Duration of a call so far (live) or in all (ended), in ms. */
export function callDuration(c) {
  if (c.status === "active") return Math.max(0, serverNow() - Date.parse(c.started_at));
  return c.duration_ms ?? 0;
}

export function statusText(c) {
  if (c.status === "active") return "Live";
  if (c.status === "interrupted") return "Interrupted";
  return REASONS[c.reason] ?? "Ended";
}

export class CallView {
  /**
   * @param {object} o
   * @param {(track: string) => string} o.label
   * @param {() => void} o.onSocket the caption socket changed state
   * @param {(call: object) => void} o.onCall something new is known about the call
   */
  constructor({ label, onSocket, onCall }) {
    this.root = $("#call");
    this.label = label;
    this.onSocket = onSocket;
    this.onCall = onCall;
    this.gen = 0;
    this.sub = null;
    this.player = null;
    this.timeline = new Timeline({
      scroller: $("#scroller"), list: $("#timeline"), jump: $("#jump"), empty: $("#timeline-empty"),
      label, onSeek: (ms) => this.player?.seek(ms / 1000, { play: true }),
    });
    const search = $("#search");
    search.addEventListener("input", () => this.search(search.value));
    search.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && search.value) {
        search.value = "";
        this.search("");
      }
    });
  }

  /** Show call id: live over the socket, or finished from the API. */
  async open(id) {
    this.close();
    const gen = ++this.gen;
    this.id = id;
    this.call = null;
    this.lastSeq = 0;
    this.ended = false;
    this.root.hidden = false;
    delete this.root.dataset.ready;
    delete this.root.dataset.error;
    $("#search").value = "";
    $("#search-count").textContent = "";
    $("#tools").hidden = true;
    $("#player").hidden = true;
    this.timeline.reset("live");
    this.renderHead({ call_id: id, status: "loading", tracks: [], custom_parameters: {} });
    let rec = null;
    try {
      rec = normalizeCall(await api(`api/calls/${enc(id)}`));
    } catch (e) {
      if (gen !== this.gen) return;
      if (!(e instanceof ApiError) || e.status !== 404) {
        this.fail(e);
        return;
      }
    }
    if (gen !== this.gen) return;
    if (rec && rec.status !== "active") {
      this.call = rec;
      this.renderHead(rec);
      await this.showFinished(gen, null);
      return;
    }
    this.call = rec;
    this.setMode(rec ? "live" : "waiting");
    this.renderHead(rec ?? { call_id: id, status: "waiting", tracks: [], custom_parameters: {} });
    this.sub = new Subscriber({
      url: () => wsURL(`ws/captions?call=${enc(id)}${this.lastSeq ? `&after=${this.lastSeq}` : ""}`),
      onEvent: (ev) => this.onEvent(ev),
      onClose: (e) => {
        if (e.code === CLOSE_REFUSED) {
          this.fail(new Error(`the bridge refused the caption socket (${e.reason || e.code})`));
          return "stop";
        }
        if (e.code === CLOSE_NOT_STARTED && this.mode === "live") {
          // It had started: it ended and the bridge has forgotten its events
          // (a long disconnect). The API still has all of it.
          this.finish();
          return "stop";
        }
        // 4004 waits again; the rest (4008 slow, 4503 cluster unavailable,
        // 1001, 1013, a lost connection) resume after lastSeq, with backoff.
        if (e.code !== CLOSE_CALL_ENDED) return "retry";
        if (!this.ended) this.finish();
        return "stop";
      },
      onState: () => this.onSocket(),
    });
    this.sub.start();
  }

  close() {
    this.gen++;
    this.sub?.stop();
    this.sub = null;
    this.player?.destroy();
    this.player = null;
    this.id = null;
    this.root.hidden = true;
    this.onSocket();
  }

  setMode(mode) {
    this.mode = mode;
    this.root.dataset.mode = mode;
    this.timeline.setMode(mode);
  }

  onEvent(ev) {
    if (ev.call_id !== this.id) return;
    // A resumed socket starts after lastSeq; anything at or below it was
    // seen already.
    if (!(ev.seq > this.lastSeq)) return;
    this.lastSeq = ev.seq;
    switch (ev.type) {
      case "call.started":
      case "call.updated": {
        const c = normalizeCall({ ...(this.call ?? {}), ...ev, status: "active" });
        c.custom_parameters = { ...(this.call?.custom_parameters ?? {}), ...(ev.custom_parameters ?? {}) };
        this.call = c;
        if (this.mode === "waiting") this.setMode("live");
        this.renderHead(c);
        this.onCall(c);
        break;
      }
      case "transcript.partial":
        this.timeline.upsertSegment(ev, false);
        break;
      case "transcript.final":
        this.timeline.upsertSegment(ev, true);
        break;
      case "dtmf":
        this.timeline.addNote({ type: ev.type, track: ev.track, at: ev.at_ms, digit: ev.digit, duration: ev.duration_ms });
        break;
      case "audio.gap": {
        // Audio dropped before transcription has no place on the clock.
        const at = ev.kind === "stt" && ev.start_ms <= 0 ? -1 : ev.start_ms;
        this.timeline.addNote({ type: ev.type, track: ev.track, at, duration: ev.duration_ms, kind: ev.kind });
        break;
      }
      case "call.ended": {
        const c = { ...(this.call ?? normalizeCall(ev)), status: "ended", reason: ev.reason, ended_at: ev.ended_at, duration_ms: ev.duration_ms };
        this.call = c;
        this.renderHead(c);
        this.onCall(c);
        this.finish();
        break;
      }
      default:
        if (ev.type?.startsWith("stt.")) {
          this.timeline.addNote({ type: ev.type, track: ev.track, at: ev.at_ms, code: ev.code, message: ev.message });
        }
    }
  }

  /** The call ended while we watched: switch to the finished view. */
  async finish() {
    if (this.ended) return;
    this.ended = true;
    this.sub?.stop();
    this.sub = null;
    this.onSocket();
    const gen = this.gen;
    let rec;
    try {
      rec = normalizeCall(await api(`api/calls/${enc(this.id)}`));
    } catch (e) {
      if (gen === this.gen) this.fail(e);
      return;
    }
    if (gen !== this.gen) return;
    this.call = rec;
    this.renderHead(rec);
    this.onCall(rec);
    await this.showFinished(gen, this.timeline.finals());
  }

  /**
   * Render the finished call from transcript.json. liveFinals, when the
   * call was watched live, is compared with it: data-live-mismatch on the
   * timeline counts the segments the live view got wrong (0 when the
   * socket delivered everything exactly once).
   */
  async showFinished(gen, liveFinals) {
    let tr;
    try {
      tr = await api(`api/calls/${enc(this.id)}/transcript`);
    } catch (e) {
      if (gen === this.gen) this.fail(e);
      return;
    }
    if (gen !== this.gen) return;
    const segs = [...(tr.segments ?? [])].sort((a, b) => a.start_ms - b.start_ms);
    let mismatch = null;
    if (liveFinals) {
      const want = new Map(segs.map((s) => [s.segment_id, s.text]));
      const got = new Map();
      let bad = 0;
      for (const f of liveFinals) {
        if (got.has(f.segment_id) || want.get(f.segment_id) !== f.text) bad++;
        got.set(f.segment_id, f.text);
      }
      for (const id of want.keys()) if (!got.has(id)) bad++;
      mismatch = bad;
    }
    this.setMode("finished");
    this.timeline.reset("finished");
    if (mismatch !== null) this.timeline.list.dataset.liveMismatch = String(mismatch);
    for (const s of segs) this.timeline.upsertSegment(s, true);
    for (const e of tr.events ?? []) {
      this.timeline.addNote({ type: e.type, track: e.track, at: e.at_ms, duration: e.duration_ms, digit: e.digit, kind: e.kind, code: e.code, message: e.message });
    }
    // Someone who watched the call to its end stays at the end.
    if (liveFinals) this.timeline.scrollToEnd();
    else this.timeline.scroller.scrollTop = 0;

    const tracks = this.call.tracks.length ? this.call.tracks : tr.tracks ?? [];
    const base = `api/calls/${enc(this.id)}`;
    this.renderDownloads(base, tracks);
    $("#tools").hidden = false;
    const playerRoot = $("#player");
    if (tracks.length) {
      this.player = new Player(playerRoot, {
        tracks: tracks.map((t) => ({ name: t, label: this.label(t), url: `${base}/recordings/${enc(t)}.wav` })),
        onTime: (ms, playing) => this.timeline.highlight(ms, playing),
      });
      playerRoot.hidden = false;
    }
    this.root.dataset.ready = "true";
  }

  renderDownloads(base, tracks) {
    const link = (href, text, hint) => el("a", { href, download: "", class: "dl" }, text, el("span", { class: "dl-hint" }, hint));
    $("#downloads").replaceChildren(
      ...tracks.map((t) => link(`${base}/recordings/${enc(t)}.wav`, this.label(t), "WAV")),
      link(`${base}/transcript`, "Transcript", "JSON"),
      link(`${base}/transcript.vtt`, "Captions", "VTT"),
      link(`${base}/transcript.srt`, "Captions", "SRT"),
    );
  }

  search(q) {
    const n = this.timeline.search(q.trim());
    $("#search-count").textContent = q.trim() ? (n === 1 ? "1 match" : `${n} matches`) : "";
  }

  fail(e) {
    this.setMode("error");
    this.root.dataset.error = "true";
    $("#timeline-empty").hidden = false;
    $("#timeline-empty").textContent = e instanceof ApiError && e.status === 404
      ? "This call is not known to the bridge."
      : `Could not load this call: ${e.message}`;
  }

  renderHead(c) {
    $("#call-title").textContent = c.call_id;
    $("#call-title").title = c.call_id;
    const badge = $("#call-status");
    const st = c.status === "loading" ? "Loading…" : c.status === "waiting" ? "Waiting" : statusText(c);
    badge.textContent = st;
    badge.className = `badge badge-${c.status}${c.status === "ended" && c.reason === "error" ? " badge-error" : ""}`;

    const meta = [];
    const item = (k, v, cls) => v && meta.push(el("div", { class: cls ?? null }, el("dt", {}, k), el("dd", {}, v)));
    if (c.provider) item("Provider", providerName(c.provider));
    item("From", c.from);
    item("To", c.to);
    if (fmtWhen(c.started_at)) {
      item("Started", fmtWhen(c.started_at));
      meta[meta.length - 1].title = fmtFull(c.started_at);
    }
    if (c.started_at) item("Duration", fmtClock(callDuration(c)), "dur");
    if (c.tracks?.length) item("Tracks", c.tracks.map((t) => this.label(t)).join(" · "));
    $("#call-meta").replaceChildren(...meta);

    const problems = [c.error, ...(c.trackInfo ?? []).flatMap((t) => [t.error && `${this.label(t.name)}: ${t.error}`, t.warning && `${this.label(t.name)}: ${t.warning}`])].filter(Boolean);
    const warn = $("#call-warning");
    warn.hidden = problems.length === 0;
    warn.textContent = problems.join(" · ");

    const params = Object.entries(c.custom_parameters ?? {});
    const details = $("#call-params");
    details.hidden = params.length === 0;
    $("#call-params-count").textContent = params.length === 1 ? "1 custom parameter" : `${params.length} custom parameters`;
    $("#call-params-list").replaceChildren(...params.sort().map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v))));
  }

  /** Once a second: the duration of a live call. */
  tick() {
    if (this.call?.status !== "active" || !this.call.started_at) return;
    const dd = $("#call-meta .dur dd");
    if (dd) dd.textContent = fmtClock(callDuration(this.call));
  }
}
