// The captions of one call: an interleaved timeline on the call clock.
//
// One list holds both tracks in the order things were said (by start_ms),
// each line labelled with its speaker. It reads like the conversation did,
// turn-taking and interruptions included, it stays readable at phone width
// (two columns would leave each speaker a sliver), and there is one scroll
// position to follow — the same order as the WebVTT/SRT downloads.
//
// A partial is a row marked .partial (and aria-hidden, so that screen
// readers announce each utterance once, as a final). Every update of a
// segment builds a new row and swaps it for the old one in the same task,
// so the page never shows a partial and its final at once.

import { el, fmtClock, fmtSpan, trackClass } from "./util.js";

// Within this distance of the bottom, the reader is "at the live edge" and
// the timeline follows new captions.
const NEAR_BOTTOM_PX = 48;

export class Timeline {
  /**
   * @param {object} o
   * @param {HTMLElement} o.scroller the scrolling container
   * @param {HTMLOListElement} o.list the rows
   * @param {HTMLButtonElement} o.jump "Jump to live"
   * @param {HTMLElement} o.empty placeholder shown while there are no rows
   * @param {(track: string) => string} o.label the speaker label of a track
   * @param {(ms: number) => void} o.onSeek a timestamp was clicked (finished view)
   */
  constructor({ scroller, list, jump, empty, label, onSeek }) {
    Object.assign(this, { scroller, list, jump, empty, label, onSeek });
    this.reset("live");
    scroller.addEventListener("scroll", () => this.onScroll(), { passive: true });
    // Scrolling up is a clear wish to read back: stop following at once,
    // before a new caption could pull the view down again.
    scroller.addEventListener("wheel", (e) => e.deltaY < 0 && this.pause(), { passive: true });
    scroller.addEventListener("keydown", (e) => {
      if (["ArrowUp", "PageUp", "Home"].includes(e.key)) this.pause();
    });
    jump.addEventListener("click", () => {
      this.resume();
      scroller.focus({ preventScroll: true });
    });
    // A phone turned or a window resized: stay at the live edge.
    new ResizeObserver(() => this.mode !== "finished" && this.follow && this.scrollToEnd()).observe(scroller);
    list.addEventListener("click", (e) => {
      const b = e.target.closest("button.ts");
      if (b && this.mode === "finished") this.onSeek(b.closest("li")._start);
    });
  }

  /** Empty the timeline for a call in mode live, waiting or finished. */
  reset(mode) {
    this.rows = new Map(); // segment_id -> row
    this.current = [];
    this.maxStart = 0;
    this.unseen = 0;
    this.follow = true;
    this.query = "";
    this.list.replaceChildren();
    delete this.list.dataset.liveMismatch;
    this.setMode(mode);
  }

  setMode(mode) {
    this.mode = mode;
    const live = mode !== "finished";
    // A log is announced as it grows; a finished transcript is just a list.
    this.list.setAttribute("role", live ? "log" : "list");
    this.list.setAttribute("aria-live", live ? "polite" : "off");
    this.list.dataset.mode = mode;
    this.updateChrome();
  }

  /** Insert or replace the row of a segment. A partial never undoes a final. */
  upsertSegment(seg, final) {
    const id = seg.segment_id;
    const old = this.rows.get(id);
    if (old && old._final && !final) return;
    const li = this.segmentRow(seg, final);
    if (old && old._start === li._start) {
      old.replaceWith(li);
    } else {
      old?.remove();
      this.insertSorted(li);
    }
    this.rows.set(id, li);
    this.changed(final && !old?._final);
  }

  /** Drop partials whose utterance never got a final (the call ended first). */
  dropPartials() {
    for (const [id, li] of this.rows) {
      if (!li._final) {
        li.remove();
        this.rows.delete(id);
      }
    }
    this.updateChrome();
  }

  /** Finals on screen, in timeline order: [{segment_id, track, text}]. */
  finals() {
    return [...this.list.querySelectorAll("li.seg:not(.partial)")].map((li) => ({
      segment_id: li.dataset.seg, track: li.dataset.track, text: li._text,
    }));
  }

  /**
   * Add a non-speech event: n = {type, track, at, duration, digit, kind,
   * code, message}. Events at an unknown time (at < 0) go at the end.
   */
  addNote(n) {
    const text = noteText(n, this.label(n.track));
    if (!text) return;
    const at = n.at >= 0 ? n.at : this.maxStart;
    const level = n.type === "stt.failed" ? "error" : n.type.startsWith("stt.") || n.type === "audio.gap" ? "warn" : "info";
    const li = el("li", { class: `note note-${level} t-${trackClass(n.track ?? "")}`, "data-type": n.type, "data-start": at },
      el("span", { class: "ts" }, fmtClock(at)),
      el("span", { class: "note-text" }, text));
    li._start = at;
    this.insertSorted(li);
    this.changed(false);
  }

  segmentRow(seg, final) {
    const start = Math.max(0, Number(seg.start_ms) || 0);
    const end = Math.max(start, Number(seg.end_ms) || 0);
    const track = seg.track ?? "";
    const li = el("li", {
      class: `seg t-${trackClass(track)}${final ? "" : " partial"}`,
      "data-seg": seg.segment_id, "data-track": track, "data-start": start, "data-end": end,
      "aria-hidden": final ? null : "true",
    });
    Object.assign(li, { _start: start, _end: end, _final: final, _text: seg.text ?? "" });
    const time = fmtClock(start);
    const ts = this.mode === "finished"
      ? el("button", { type: "button", class: "ts", title: `Play from ${time}`, "aria-label": `Play from ${time}` }, time)
      : el("span", { class: "ts" }, time);
    li.append(ts, el("span", { class: "who" }, this.label(track)), el("p", { class: "text" }, li._text));
    return li;
  }

  insertSorted(li) {
    this.maxStart = Math.max(this.maxStart, li._start);
    let ref = this.list.lastElementChild;
    while (ref && ref._start > li._start) ref = ref.previousElementSibling;
    this.list.insertBefore(li, ref ? ref.nextElementSibling : this.list.firstElementChild);
  }

  changed(newFinal) {
    if (this.mode !== "finished") {
      if (this.follow) this.scrollToEnd();
      else if (newFinal) this.unseen++;
    }
    this.updateChrome();
  }

  nearBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight <= NEAR_BOTTOM_PX;
  }

  onScroll() {
    if (this.mode === "finished") return;
    const near = this.nearBottom();
    if (near === this.follow) return;
    this.follow = near;
    if (near) this.unseen = 0;
    this.updateChrome();
  }

  pause() {
    if (this.mode === "finished" || !this.follow) return;
    if (this.scroller.scrollHeight <= this.scroller.clientHeight) return; // nothing to scroll
    this.follow = false;
    this.updateChrome();
  }

  resume() {
    this.follow = true;
    this.unseen = 0;
    this.scrollToEnd();
    this.updateChrome();
  }

  scrollToEnd() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  updateChrome() {
    const showJump = this.mode !== "finished" && !this.follow;
    this.jump.hidden = !showJump;
    this.jump.textContent = this.unseen > 0 ? `Jump to live · ${this.unseen} new` : "Jump to live";
    const rows = this.list.childElementCount;
    this.empty.hidden = rows > 0;
    this.empty.textContent = this.mode === "waiting"
      ? "Waiting for this call to start…"
      : this.mode === "finished" ? "Nothing was transcribed in this call." : "Listening… captions appear here as people speak.";
  }

  /**
   * Show only the segments matching q (case-insensitive), with the matches
   * marked; returns how many segments match. An empty q shows everything.
   */
  search(q) {
    this.query = q;
    const re = q ? new RegExp(q.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "giu") : null;
    let hits = 0;
    for (const li of this.list.children) {
      if (!li.classList.contains("seg")) {
        li.hidden = re !== null;
        continue;
      }
      const p = li.querySelector(".text");
      if (!re) {
        li.hidden = false;
        p.textContent = li._text;
        continue;
      }
      const parts = [];
      let last = 0;
      re.lastIndex = 0;
      for (let m = re.exec(li._text); m; m = re.exec(li._text)) {
        parts.push(li._text.slice(last, m.index), el("mark", {}, m[0]));
        last = m.index + m[0].length;
      }
      li.hidden = parts.length === 0;
      if (parts.length) {
        hits++;
        parts.push(li._text.slice(last));
        p.replaceChildren(...parts);
      } else {
        p.textContent = li._text;
      }
    }
    return hits;
  }

  /**
   * Mark the segments under the playhead (ms on the call clock). While
   * playing, keep the current segment in view if the reader was looking at
   * the previous one.
   */
  highlight(ms, playing) {
    const now = [];
    for (const li of this.list.children) {
      if (li._start > ms) break;
      if (li._final && ms < li._end) now.push(li);
    }
    if (now.length === this.current.length && now.every((li, i) => li === this.current[i])) return;
    const wasVisible = this.current.length === 0 || this.current.some((li) => this.inView(li));
    for (const li of this.current) {
      li.classList.remove("current");
      li.removeAttribute("aria-current");
    }
    for (const li of now) {
      li.classList.add("current");
      li.setAttribute("aria-current", "true");
    }
    this.current = now;
    if (playing && wasVisible && now.length && !now[0].hidden && !this.inView(now[0])) {
      now[0].scrollIntoView({ block: "nearest" });
    }
  }

  inView(li) {
    const a = li.getBoundingClientRect();
    const b = this.scroller.getBoundingClientRect();
    return a.bottom > b.top && a.top < b.bottom;
  }
}

/** What a non-speech event says, or "" for events not worth a line. */
function noteText(n, who) {
  switch (n.type) {
    case "dtmf":
      return `${who} pressed ${n.digit || "a key"}`;
    case "audio.gap":
      return n.kind === "stt"
        ? `${who}: ${fmtSpan(n.duration)} of audio not transcribed`
        : `${who}: ${fmtSpan(n.duration)} of audio missing (silence in the recording)`;
    case "stt.rollover":
      return ""; // a planned stream switch: nothing lost, nothing to say
    case "stt.retry":
      return `${who}: speech recognition interrupted${n.code ? ` (${n.code})` : ""}, reconnecting`;
    case "stt.resumed":
      return `${who}: speech recognition resumed`;
    case "stt.failed":
      return `${who}: speech recognition stopped${n.message ? ` — ${n.message}` : ""}`;
    case "stt.gap":
      return `${who}: ${fmtSpan(n.duration)} of audio not transcribed`;
  }
  if (n.type?.startsWith("stt.")) return `${who}: speech recognition ${n.type.slice(4)}`;
  return "";
}
