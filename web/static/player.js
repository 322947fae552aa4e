// Plays a finished call's recordings: one <audio> per track, kept together.
//
// Each track is its own streamed WAV (byte ranges, so hours-long calls start
// at once and seek anywhere); decoding whole files for WebAudio mixing would
// hold hours of float samples in memory. The longest track leads: the
// controls drive it, and every other track follows its play, pause, seek and
// rate, and is pulled back whenever it drifts more than DRIFT_S away.
// Muting a track is how one listens to a single side.

import { el, fmtClock } from "./util.js";

const DRIFT_S = 0.15;
const RATES = [0.75, 1, 1.25, 1.5, 2];
const SVG = "http://www.w3.org/2000/svg";

function icon(d) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const p = document.createElementNS(SVG, "path");
  p.setAttribute("d", d);
  svg.append(p);
  return svg;
}
const PLAY = "M8 5.5v13a1 1 0 0 0 1.5.86l10.5-6.5a1 1 0 0 0 0-1.72L9.5 4.64A1 1 0 0 0 8 5.5z";
const PAUSE = "M7 5h3.5v14H7zM13.5 5H17v14h-3.5z";

export class Player {
  /**
   * @param {HTMLElement} root where the controls go
   * @param {object} o
   * @param {{name: string, label: string, url: string}[]} o.tracks
   * @param {(ms: number, playing: boolean) => void} o.onTime the playhead moved
   */
  constructor(root, { tracks, onTime }) {
    this.root = root;
    this.onTime = onTime;
    this.dragging = false;
    this.audios = tracks.map((t) => el("audio", { preload: "metadata", "data-track": t.name, src: t.url }));
    this.lead = this.audios[0];
    this.failed = new Set();

    this.playBtn = el("button", { type: "button", class: "play", "aria-label": "Play recording", disabled: true });
    this.playBtn.append(icon(PLAY));
    this.shownPlaying = false;
    this.time = el("span", { class: "time", "aria-hidden": "true" }, "00:00 / --:--");
    this.seekBar = el("input", {
      type: "range", class: "seek", min: 0, max: 0, step: 1, value: 0, disabled: true,
      "aria-label": "Position in the recording",
    });
    this.rate = el("select", { class: "rate", "aria-label": "Playback speed" },
      ...RATES.map((r) => el("option", { value: r, selected: r === 1 }, `${r}×`)));
    const mix = el("fieldset", { class: "mix" }, el("legend", { class: "visually-hidden" }, "Tracks to hear"));
    for (const [i, t] of tracks.entries()) {
      const box = el("input", { type: "checkbox", checked: true, "data-track": t.name });
      box.addEventListener("change", () => { this.audios[i].muted = !box.checked; });
      mix.append(el("label", { class: `hear t-${t.name}` }, box, ` ${t.label}`));
    }
    this.status = el("span", { class: "player-status", role: "status" });
    root.replaceChildren(this.playBtn, this.time, this.seekBar, mix, this.rate, this.status, ...this.audios);

    this.playBtn.addEventListener("click", () => this.toggle());
    this.seekBar.addEventListener("pointerdown", () => { this.dragging = true; });
    this.seekBar.addEventListener("pointerup", () => { this.dragging = false; });
    this.seekBar.addEventListener("input", () => this.seek(Number(this.seekBar.value)));
    this.rate.addEventListener("change", () => { this.lead.playbackRate = Number(this.rate.value); });

    for (const a of this.audios) {
      a.addEventListener("loadedmetadata", () => this.ready());
      a.addEventListener("error", () => {
        this.failed.add(a);
        this.status.textContent = `The ${tracks[this.audios.indexOf(a)].label} recording could not be loaded.`;
        this.ready();
      });
      a.addEventListener("timeupdate", () => a === this.lead && this.tick());
      a.addEventListener("seeked", () => a === this.lead && this.tick());
      a.addEventListener("play", () => a === this.lead && this.follow(true));
      a.addEventListener("pause", () => a === this.lead && this.follow(false));
      a.addEventListener("ended", () => a === this.lead && this.tick());
      a.addEventListener("ratechange", () => {
        if (a !== this.lead) return;
        for (const f of this.followers()) f.playbackRate = a.playbackRate;
      });
    }
  }

  followers() {
    return this.audios.filter((a) => a !== this.lead && !this.failed.has(a));
  }

  /** Once every track has loaded (or failed), the longest one leads. */
  ready() {
    const ok = this.audios.filter((a) => !this.failed.has(a));
    if (ok.some((a) => a.readyState < HTMLMediaElement.HAVE_METADATA)) return;
    const playable = ok.filter((a) => a.duration > 0);
    if (playable.length === 0) {
      if (ok.length) this.status.textContent = "The recordings hold no audio.";
      return;
    }
    this.lead = playable.reduce((a, b) => (b.duration > a.duration ? b : a));
    this.duration = this.lead.duration;
    this.seekBar.max = String(Math.ceil(this.duration));
    this.seekBar.disabled = false;
    this.playBtn.disabled = false;
    this.tick();
  }

  toggle() {
    if (this.lead.paused) this.play();
    else this.lead.pause();
  }

  play() {
    this.status.textContent = "";
    this.lead.play().catch((e) => {
      // AbortError: a pause or a new source came first, which is no failure.
      if (e.name === "AbortError") return;
      this.status.textContent = e.name === "NotAllowedError"
        ? "The browser blocked playback: press play to listen."
        : `Playback did not start: ${e.message}`;
    });
  }

  /** Move every track to sec (seconds on the call clock). */
  seek(sec, { play = false } = {}) {
    sec = Math.max(0, sec);
    for (const a of this.audios) {
      a.currentTime = a.duration > 0 ? Math.min(sec, a.duration) : sec;
    }
    this.tick();
    if (play && this.lead.paused) this.play();
  }

  /** Bring the followers to the lead: its play state and position. */
  follow(playing) {
    for (const f of this.followers()) {
      if (!playing) {
        f.pause();
        continue;
      }
      if (this.lead.currentTime >= f.duration) continue; // this track is over
      if (Math.abs(f.currentTime - this.lead.currentTime) > DRIFT_S) f.currentTime = this.lead.currentTime;
      f.play().catch(() => {});
    }
    this.tick();
  }

  tick() {
    const t = this.lead.currentTime || 0;
    const playing = !this.lead.paused && !this.lead.ended;
    if (playing !== this.shownPlaying) {
      this.shownPlaying = playing;
      this.playBtn.replaceChildren(icon(playing ? PAUSE : PLAY));
      this.playBtn.setAttribute("aria-label", playing ? "Pause recording" : "Play recording");
    }
    const total = this.duration ? fmtClock(this.duration * 1000) : "--:--";
    this.time.textContent = `${fmtClock(t * 1000)} / ${total}`;
    if (!this.dragging) this.seekBar.value = String(Math.round(t));
    this.seekBar.setAttribute("aria-valuetext", `${fmtClock(t * 1000)} of ${total}`);
    if (playing) {
      for (const f of this.followers()) {
        if (t < f.duration && Math.abs(f.currentTime - t) > DRIFT_S) f.currentTime = t;
        if (t < f.duration && f.paused) f.play().catch(() => {});
      }
    }
    this.onTime(t * 1000, playing);
  }

  /** Stop playing and release the recordings (and their connections). */
  destroy() {
    for (const a of this.audios) {
      a.pause();
      a.removeAttribute("src");
      a.load();
    }
    this.root.replaceChildren();
  }
}
