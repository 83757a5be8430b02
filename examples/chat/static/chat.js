// The chat page. It listens in one of three ways, picked by ?transport=:
//
//   sse   EventSource on /events: a stream gripd holds open (Grip-Hold: stream)
//   ws    WebSocket on /ws: gripd terminates it and talks
//         WebSocket-over-HTTP to the backend
//   poll  fetch /poll in a loop: each request is held by gripd
//         (Grip-Hold: response) until a message comes or 25 s pass
//
// Whichever way a window listens, every message arrives as the same JSON:
// {"from", "text", "via", "at"}. The page must be loaded through gripd:
// the backend never holds a connection itself.
"use strict";

const params = new URLSearchParams(location.search);
const TRANSPORTS = ["sse", "ws", "poll"];
const transport = TRANSPORTS.includes(params.get("transport")) ? params.get("transport") : "sse";
const room = params.get("room") || "lobby";

const logEl = document.getElementById("log");
const stateEl = document.getElementById("state");
const nameEl = document.getElementById("name");
const textEl = document.getElementById("text");

document.getElementById("room").textContent = room;
nameEl.value = params.get("name") || "guest-" + Math.floor(100 + Math.random() * 900);
document.title = "gripd chat (" + transport + ")";

// The transport links keep the room and the name.
for (const a of document.querySelectorAll(".transports a")) {
  const t = a.dataset.transport;
  a.href = pageURL(t);
  if (t === transport) a.setAttribute("aria-current", "true");
}
document.getElementById("another").onclick = () => {
  const next = TRANSPORTS[(TRANSPORTS.indexOf(transport) + 1) % TRANSPORTS.length];
  window.open(pageURL(next, "guest-" + Math.floor(100 + Math.random() * 900)), "_blank");
};

function pageURL(t, name) {
  const p = new URLSearchParams({ transport: t, room: room, name: name || nameEl.value });
  return "?" + p.toString();
}

function setState(state, text) {
  stateEl.dataset.state = state;
  stateEl.textContent = text;
}

// Messages come from anyone: always textContent, never innerHTML.
function note(text) {
  const li = document.createElement("li");
  li.className = "note";
  li.textContent = text;
  append(li);
}

function show(msg) {
  if (msg.notice) {
    note(msg.notice);
    return;
  }
  const li = document.createElement("li");
  li.className = "msg";
  const from = document.createElement("span");
  from.className = "from";
  from.textContent = msg.from;
  const via = document.createElement("span");
  via.className = "via via-" + (TRANSPORTS.includes(msg.via) ? msg.via : "sse");
  via.textContent = msg.via;
  via.title = "sent from a window listening with " + msg.via;
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = msg.text;
  const at = document.createElement("time");
  at.dateTime = msg.at;
  at.textContent = new Date(msg.at).toLocaleTimeString();
  li.append(from, via, text, at);
  append(li);
}

function append(li) {
  const atBottom = logEl.scrollTop + logEl.clientHeight >= logEl.scrollHeight - 4;
  logEl.append(li);
  if (atBottom) logEl.scrollTop = logEl.scrollHeight;
}

function parse(data) {
  try {
    return JSON.parse(data);
  } catch (e) {
    return { notice: "(unreadable message)" };
  }
}

// ---- listening

let ws = null; // the socket, with transport=ws

function listenSSE() {
  const es = new EventSource("events?room=" + encodeURIComponent(room));
  // gripd subscribed the stream before sending its headers: once open,
  // nothing published to the room is missed.
  es.onopen = () => setState("live", "live: Server-Sent Events (EventSource)");
  es.onmessage = (ev) => show(parse(ev.data));
  es.onerror = () => setState("error", "reconnecting\u2026 (EventSource retries by itself)");
}

function listenWS() {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const base = location.pathname.replace(/[^/]*$/, "");
  ws = new WebSocket(scheme + location.host + base + "ws?room=" + encodeURIComponent(room));
  let welcomed = false;
  ws.onmessage = (ev) => {
    const msg = parse(ev.data);
    // The backend's welcome comes after gripd has subscribed the socket.
    if (!welcomed && msg.notice) {
      welcomed = true;
      setState("live", "live: WebSocket (WebSocket-over-HTTP to the backend)");
    }
    show(msg);
  };
  ws.onclose = (ev) => {
    setState("error", "disconnected (" + ev.code + "); reconnecting in 2 s\u2026");
    setTimeout(listenWS, 2000);
  };
}

async function listenPoll() {
  const url = "poll?room=" + encodeURIComponent(room);
  for (;;) {
    setState("live", "live: long-poll (each request held by gripd until a message comes)");
    try {
      const resp = await fetch(url, { cache: "no-store" });
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      const body = await resp.json();
      for (const m of body.messages || []) show(m);
    } catch (e) {
      setState("error", "poll failed (" + e.message + "); retrying in 2 s\u2026");
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

// ---- sending

document.getElementById("form").onsubmit = async (ev) => {
  ev.preventDefault();
  const msg = { from: nameEl.value.trim(), text: textEl.value.trim() };
  if (!msg.from || !msg.text) return;
  textEl.value = "";
  if (transport === "ws") {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
    else note("not sent: the WebSocket is not open");
    return;
  }
  try {
    const resp = await fetch("send?room=" + encodeURIComponent(room) + "&via=" + transport, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(msg),
    });
    if (!resp.ok) note("not sent: " + (await resp.text()).trim());
  } catch (e) {
    note("not sent: " + e.message);
  }
};

({ sse: listenSSE, ws: listenWS, poll: listenPoll })[transport]();
