// A caption socket that reconnects by itself.

// Reconnect delays: quick first retries for a blip, then backing off to
// spare a bridge that is restarting or overloaded. Each delay is jittered
// by ±20 % so that many pages do not come back in lockstep.
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];

// A connection that stayed up this long resets the backoff even if it
// carried no events.
const STABLE_MS = 5000;

/**
 * Subscriber keeps one WebSocket to the bridge open. url() is asked again
 * before every attempt (so it can carry after=<last seq>); onEvent gets every
 * parsed event; onClose(event, opened) decides whether to "retry" (default)
 * or "stop"; onState is told of every state change.
 *
 * States: idle, connecting, open, retrying (waiting retryAt), stopped.
 */
export class Subscriber {
  constructor({ url, onEvent, onOpen, onClose, onState }) {
    this.opts = { url, onEvent, onOpen, onClose, onState };
    this.state = "idle";
    this.attempt = 0;
    this.reconnects = 0;
    this.retryAt = 0;
    this.ws = null;
    this.timer = 0;
  }

  start() {
    if (this.state !== "idle" && this.state !== "stopped") return;
    this.connect();
  }

  stop() {
    clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = null;
    this.set("stopped");
    if (ws) ws.close(1000, "page left");
  }

  /** Skip the wait of a pending retry. */
  retryNow() {
    if (this.state !== "retrying") return;
    clearTimeout(this.timer);
    this.reconnects++;
    this.connect();
  }

  connect() {
    let ws;
    try {
      ws = new WebSocket(this.opts.url());
    } catch {
      this.schedule();
      return;
    }
    this.ws = ws;
    let opened = false;
    let openedAt = 0;
    this.set("connecting");
    ws.onopen = () => {
      if (ws !== this.ws) return;
      opened = true;
      openedAt = performance.now();
      this.set("open");
      this.opts.onOpen?.();
    };
    ws.onmessage = (m) => {
      if (ws !== this.ws) return;
      this.attempt = 0;
      let ev;
      try {
        ev = JSON.parse(m.data);
      } catch {
        return; // not an event; the bridge only sends JSON
      }
      this.opts.onEvent(ev);
    };
    ws.onclose = (e) => {
      if (ws !== this.ws) return; // stopped or replaced
      this.ws = null;
      if (opened && performance.now() - openedAt > STABLE_MS) this.attempt = 0;
      const verdict = this.opts.onClose?.(e, opened) ?? "retry";
      if (verdict === "stop" || this.state === "stopped") {
        this.set("stopped");
        return;
      }
      this.schedule();
    };
  }

  schedule() {
    const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt++;
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.retryAt = Date.now() + delay;
    this.set("retrying");
    this.timer = setTimeout(() => {
      this.reconnects++;
      this.connect();
    }, delay);
  }

  set(state) {
    this.state = state;
    this.opts.onState?.(this);
  }
}
