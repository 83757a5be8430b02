// Browser tests of the demo app (examples/chat) and of gripd's status page,
// in headless Chromium driven by playwright-core. playwright-core downloads
// no browser: it starts Debian's /usr/bin/chromium (or $GRIPD_CHROMIUM).
// browser_test.go starts gripd and the chat backend and runs this script;
// it can also run by hand against `make demo`:
//
//   node js/browser.js chat   --app http://127.0.0.1:7999 --admin http://127.0.0.1:5563 --out DIR --transport sse|ws|poll
//   node js/browser.js phone  --app http://127.0.0.1:7999 --admin http://127.0.0.1:5563 --out DIR
//   node js/browser.js status --app http://127.0.0.1:7999 --admin http://127.0.0.1:5563 --out DIR [--traffic SECONDS] [--room NAME]
//
// --traffic keeps the windows chatting for that long (opening a few more
// now and then), for screenshots with minutes of charts: the ones in docs/
// were taken with --traffic 200 --room lobby.
//
// It prints one line per step, writes its screenshots to DIR, and exits 0
// with "ok" last, or 1 with "FAIL: <what the user would have seen>".
// Every wait is bounded; the whole run is cut off after 120 s (plus --traffic).
import { chromium } from "playwright-core";
import { parseArgs } from "node:util";

const { positionals, values: opt } = parseArgs({
  allowPositionals: true,
  options: {
    app: { type: "string" },
    admin: { type: "string" },
    out: { type: "string" },
    transport: { type: "string", default: "sse" },
    traffic: { type: "string", default: "0" },
    room: { type: "string" },
  },
});
const scenario = positionals[0];
if (!["chat", "phone", "status"].includes(scenario) || !opt.app || !opt.admin || !opt.out) {
  console.error("usage: node js/browser.js chat|phone|status --app URL --admin URL --out DIR [--transport sse|ws|poll] [--traffic SECONDS] [--room NAME]");
  process.exit(2);
}

const WAIT = 15000; // the longest any one step may take
// Which hub kind each transport's connection is counted as on the admin listener.
const KIND = { sse: "stream", ws: "ws", poll: "response" };
const LABEL = { sse: "SSE", ws: "WebSocket", poll: "long-poll" };

// The flags Chromium needs here: no sandbox (tests run as root), no GPU, and
// none of its own network traffic (this machine's network is closed).
// playwright adds --headless and a fresh temporary --user-data-dir itself.
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
];

const started = Date.now();
function step(text) {
  console.log(`step: ${text} (at ${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

class Failure extends Error {}
function fail(text) {
  throw new Failure(text);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// channelCount asks gripd's admin listener how many held connections of
// kind the channel has (0 when nobody listens: 404).
async function channelCount(channel, kind) {
  const resp = await fetch(opt.admin + "/channels/" + encodeURIComponent(channel));
  if (resp.status === 404) return 0;
  if (!resp.ok) fail(`GET /channels/${channel} on the admin listener: ${resp.status}`);
  const body = await resp.json();
  return kind ? body[kind] : body.total;
}

// waitChannel polls the admin listener until the channel has want held
// connections of kind: the only outside sign that gripd has subscribed a
// long-poll, which tells its client nothing until a message comes.
async function waitChannel(channel, kind, want) {
  const deadline = Date.now() + WAIT;
  let got;
  while ((got = await channelCount(channel, kind)) !== want) {
    if (Date.now() > deadline) fail(`channel ${channel}: ${got} held ${kind || "connections"} after ${WAIT} ms, want ${want}`);
    await sleep(50);
  }
}

// A desktop window, and a phone's (390 px wide, as an iPhone 12 to 15
// shows a page: the page's meta viewport is honoured, touch events on).
const DESKTOP = { viewport: { width: 820, height: 680 } };
const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 3, isMobile: true, hasTouch: true };

async function openChat(browser, transport, name, room, device = DESKTOP) {
  // A context each, like two people's browsers: no shared connection pool.
  const context = await browser.newContext(device);
  const page = await context.newPage();
  page.on("pageerror", (e) => console.log(`page error (${name}): ${e.message}`));
  // Every request the page makes (its script, style, icon) must succeed.
  const failed = [];
  page.on("response", (r) => {
    if (r.status() >= 400) failed.push(`${r.request().method()} ${r.url()}: ${r.status()}`);
  });
  const url = `${opt.app}/?transport=${transport}&name=${encodeURIComponent(name)}&room=${encodeURIComponent(room)}`;
  const resp = await page.goto(url);
  if (!resp || resp.status() !== 200) fail(`GET ${url}: status ${resp && resp.status()}`);
  await page.locator('#state[data-state="live"]').waitFor({ timeout: WAIT });
  if (failed.length > 0) fail(`${name}'s window: ${failed.join(", ")}`);
  return { name, page, context };
}

async function send(who, text) {
  await who.page.locator("#text").fill(text);
  await who.page.locator("#send").click();
}

// seen waits until who's window shows the message, from whom and via what.
async function seen(who, text, from, via) {
  const li = who.page.locator("#log li.msg").filter({ hasText: text });
  try {
    await li.first().waitFor({ timeout: WAIT });
  } catch {
    const shown = await who.page.locator("#log").innerText();
    fail(`${who.name}'s window never showed "${text}" (it shows: ${JSON.stringify(shown)})`);
  }
  const gotFrom = await li.first().locator(".from").innerText();
  const gotVia = await li.first().locator(".via").innerText();
  if (gotFrom !== from || gotVia.toLowerCase() !== via) {
    fail(`${who.name}'s window shows "${text}" from ${gotFrom} via ${gotVia}, want from ${from} via ${via}`);
  }
}

// What the windows say with --traffic.
const LINES = [
  "hello from an EventSource",
  "WebSocket here, got it",
  "long-poll checking in",
  "same room, three transports",
  "and the backend holds no connection",
  "gripd pushes each message to all of us",
];

function randomRoom(prefix) {
  return `${prefix}-${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
}

// Two windows listening the same way exchange messages both ways; each
// sees both messages with the sender's name and transport; closing them
// leaves no held connection behind.
async function chatScenario(browser) {
  const t = opt.transport;
  if (!KIND[t]) fail(`unknown transport ${t}`);
  const room = randomRoom("b-" + t);
  const channel = "room:" + room;
  step(`open two ${LABEL[t]} windows in room ${room}`);
  const alice = await openChat(browser, t, "alice", room);
  const bob = await openChat(browser, t, "bob", room);
  await waitChannel(channel, KIND[t], 2);

  step("alice sends; both windows show it");
  const m1 = `hello from alice over ${LABEL[t]} \u2713`;
  await send(alice, m1);
  await seen(alice, m1, "alice", t);
  await seen(bob, m1, "alice", t);

  // A long-poll that got a message polls again: wait until both are held.
  await waitChannel(channel, KIND[t], 2);
  step("bob answers; both windows show it");
  const m2 = `hi alice, bob here <b>not bold</b>`;
  await send(bob, m2);
  await seen(alice, m2, "bob", t);
  await seen(bob, m2, "bob", t);
  const bold = await alice.page.locator("#log b").count();
  if (bold !== 0) fail("a message's markup was rendered as HTML");

  const file = `${opt.out}/chat-${t}.png`;
  await alice.page.screenshot({ path: file });
  step(`screenshot ${file}`);

  step("close both windows; gripd lets go of their connections");
  await alice.context.close();
  await bob.context.close();
  await waitChannel(channel, null, 0);
}

// fitsScreen fails unless who's page fits its window's width: no sideways
// scrolling, and the Send button wholly on screen.
async function fitsScreen(who, width) {
  const m = await who.page.evaluate(() => {
    const send = document.getElementById("send").getBoundingClientRect();
    return {
      window: window.innerWidth,
      page: document.documentElement.scrollWidth,
      send: { left: send.left, right: send.right },
    };
  });
  // A phone browser widens the window to the page when the page is wider.
  if (m.window !== width || m.page > m.window) {
    fail(`${who.name}'s window at ${width} px scrolls sideways: the page is ${m.page} px wide in a ${m.window} px window`);
  }
  if (m.send.left < 0 || m.send.right > m.window) {
    fail(`${who.name}'s Send button is off screen at ${width} px: from ${m.send.left} to ${m.send.right} px, the window is ${m.window} px`);
  }
}

// On a phone (390 px) the page fits the screen, with the Send button on
// it, and a message typed and tapped there reaches a desktop window.
async function phoneScenario(browser) {
  const room = randomRoom("b-phone");
  step(`open a phone window (390 px) and a desktop window in room ${room}`);
  const phone = await openChat(browser, "sse", "pat", room, PHONE);
  const desk = await openChat(browser, "sse", "dee", room);
  await waitChannel("room:" + room, "stream", 2);

  step("the phone window fits 390 px: no sideways scroll, Send on screen");
  await fitsScreen(phone, PHONE.viewport.width);

  step("pat types on the phone and taps Send; both windows show it");
  const m = "sent from a phone";
  await phone.page.locator("#text").fill(m);
  await phone.page.locator("#send").tap();
  await seen(phone, m, "pat", "sse");
  await seen(desk, m, "pat", "sse");
  await fitsScreen(phone, PHONE.viewport.width); // a message does not widen it

  const file = `${opt.out}/chat-phone.png`;
  await phone.page.screenshot({ path: file });
  step(`screenshot ${file}`);

  await phone.context.close();
  await desk.context.close();
  await waitChannel("room:" + room, null, 0);
}

// statusText reads a number the status page shows.
async function statusText(page, id) {
  return (await page.locator("#" + id).innerText()).trim();
}

async function waitStatus(page, id, want, why) {
  try {
    await page.waitForFunction(([id, want]) => document.getElementById(id).textContent.trim() === want, [id, want], {
      timeout: WAIT,
    });
  } catch {
    fail(`the status page shows ${id} = ${await statusText(page, id)} ${why}, want ${want}`);
  }
}

// The status page counts windows as they open and close, by kind, lists
// their room among the busiest channels, and shows the deliveries.
async function statusScenario(browser) {
  const room = opt.room || randomRoom("status");
  const channel = "room:" + room;
  step("open the status page");
  const sctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const status = await sctx.newPage();
  status.on("pageerror", (e) => console.log(`page error (status): ${e.message}`));
  const resp = await status.goto(opt.admin + "/");
  if (!resp || resp.status() !== 200) fail(`GET ${opt.admin}/: status ${resp && resp.status()}`);
  await status.locator('#state[data-state="live"]').waitFor({ timeout: WAIT });
  await waitStatus(status, "held-total", "0", "before any window opens");
  // Counters since gripd started: other tests may have used this gripd.
  const total = async (id) => Number((await statusText(status, id)).replace(/,/g, ""));
  const publishes0 = await total("publishes-total");
  const deliveries0 = await total("deliveries-total");

  step("open an SSE, a WebSocket and a long-poll window");
  const windows = [];
  for (const [t, name] of [["sse", "ann"], ["ws", "ben"], ["poll", "cat"]]) {
    windows.push({ t, who: await openChat(browser, t, name, room) });
    await waitStatus(status, "held-total", String(windows.length), `with ${windows.length} chat windows open`);
  }
  for (const id of ["held-stream", "held-ws", "held-response"]) await waitStatus(status, id, "1", "with one window of each kind");
  try {
    await status.locator("#top tbody tr").filter({ hasText: channel }).filter({ hasText: "3" }).waitFor({ timeout: WAIT });
  } catch {
    fail(`the busiest channels never listed ${channel} with 3 connections; they show ${JSON.stringify(await status.locator("#top").innerText())}`);
  }

  step("each window sends a message; every window shows all three");
  // --traffic: go on chatting for that long (for screenshots with a few
  // minutes of charts), opening a listening window now and then.
  const traffic = Number(opt.traffic) * 1000;
  const until = Date.now() + traffic;
  const extras = [];
  let n = 0;
  do {
    if (traffic > 0 && n > 0) await sleep(300 + Math.random() * 900);
    for (const { t, who } of windows) {
      await waitChannel(channel, "response", 1 + extras.filter((e) => e.t === "poll").length); // the long-polls are held again
      const text = traffic > 0 ? `${LINES[n % LINES.length]} #${++n}` : `message ${++n} from ${who.name}`;
      await send(who, text);
      for (const w of windows) await seen(w.who, text, who.name, t);
    }
    if (traffic > 0) {
      if (n % 60 === 0 && extras.length < 6) {
        const t = ["sse", "ws", "sse", "poll", "sse", "ws"][extras.length];
        extras.push({ t, who: await openChat(browser, t, "guest-" + extras.length, room) });
      }
    }
  } while (Date.now() < until);
  // Every message reached 3 windows: 3 deliveries each (one format each).
  const want = deliveries0 + 3 * n;
  try {
    await status.waitForFunction((want) => Number(document.getElementById("deliveries-total").textContent.replace(/,/g, "")) >= want, want, {
      timeout: WAIT,
    });
  } catch {
    fail(`the status page shows ${await statusText(status, "deliveries-total")} deliveries in all, want at least ${want}`);
  }
  await waitStatus(status, "publishes-total", (publishes0 + n).toLocaleString("en-US"), `after ${n} messages`);

  const shot = `${opt.out}/status.png`;
  await status.screenshot({ path: shot, fullPage: true });
  step(`screenshot ${shot}`);
  const chat = `${opt.out}/chat.png`;
  await windows[0].who.page.screenshot({ path: chat });
  step(`screenshot ${chat}`);

  for (const e of extras) await e.who.context.close();
  await waitStatus(status, "held-total", "3", "after closing the extra windows");

  step("close the windows one by one; the count falls");
  for (let i = windows.length - 1; i >= 0; i--) {
    await windows[i].who.context.close();
    await waitStatus(status, "held-total", String(i), `after closing a window, ${i} left open`);
  }
  await sctx.close();
}

const limit = 120 + Number(opt.traffic);
const guard = setTimeout(() => {
  console.log(`FAIL: the browser test took more than ${limit} s`);
  process.exit(1);
}, limit * 1000);

let browser;
let code = 0;
try {
  const executablePath = process.env.GRIPD_CHROMIUM || "/usr/bin/chromium";
  step(`launch ${executablePath}`);
  browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS, timeout: 30000 });
  step(`chromium ${browser.version()}`);
  const scenarios = { chat: chatScenario, phone: phoneScenario, status: statusScenario };
  await scenarios[scenario](browser);
  console.log("ok");
} catch (e) {
  console.log("FAIL: " + (e instanceof Failure ? e.message : e.stack || e));
  code = 1;
} finally {
  if (browser) await browser.close();
  clearTimeout(guard);
}
process.exit(code);
