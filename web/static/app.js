"use strict";
async function loadCalls() {
  const r = await fetch("api/calls");
  const {calls} = await r.json();
  const ul = document.getElementById("calls");
  ul.replaceChildren(...calls.map(c => {
    const li = document.createElement("li");
    li.textContent = `${c.call_id} · ${c.provider} · ${c.status}`;
    return li;
  }));
}
function live() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}/ws/captions`);
  const out = document.getElementById("live");
  const lines = new Map();
  ws.onmessage = (m) => {
    const ev = JSON.parse(m.data);
    if (ev.type === "transcript.partial" || ev.type === "transcript.final") {
      let p = lines.get(ev.segment_id);
      if (!p) { p = document.createElement("p"); lines.set(ev.segment_id, p); out.append(p); }
      p.textContent = `${ev.call_id} ${ev.track}: ${ev.text}`;
      p.className = ev.type === "transcript.partial" ? "partial" : "final";
    } else if (ev.type === "call.started" || ev.type === "call.ended") { loadCalls(); }
  };
  ws.onclose = () => setTimeout(live, 2000);
}
loadCalls(); live();
