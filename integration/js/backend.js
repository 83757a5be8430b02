// A GRIP backend written the way an application would write it, with
// @fanoutio/serve-grip 2.0 on node:http. gripd's integration tests start it
// as a child process and put gripd in front of it.
//
//   node js/backend.js PORT
//
// Environment:
//   PORT              listen port (if not given as the first argument)
//   GRIP_CONTROL_URI  the proxy's control API base (for serve-grip's Publisher)
//   GRIP_SIG_KEY      the key the proxy signs Grip-Sig with (HS256)
//   GRIP_SIG_ISS      the iss the proxy puts in Grip-Sig (optional)
//
// Routes:
//   /stream?channel=X            Grip-Hold: stream on X, initial body ":stream open\n\n"
//   /poll?channel=Y&timeout=N    Grip-Hold: response on Y (timeout N s, default 20),
//                                timeout body '{"messages":[]}\n'
//   /plain                       plain text, no GRIP
//
// /stream and /poll answer 403 when the request carries no valid Grip-Sig
// (checked here with validateSig: serve-grip 2.0 calls the async validateSig
// without awaiting it, so its req.grip.isSigned is true for any Grip-Sig).
// Prints "ready" on stdout once listening.

import http from 'node:http';
import { ServeGrip } from '@fanoutio/serve-grip';
import { validateSig } from '@fanoutio/grip';

const port = Number.parseInt(process.argv[2] ?? process.env.PORT ?? '', 10);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node backend.js PORT (or PORT in the environment)');
  process.exit(2);
}
const controlUri = process.env.GRIP_CONTROL_URI || 'http://127.0.0.1:5561';
const sigKey = process.env.GRIP_SIG_KEY || 'changeme';
const sigIss = process.env.GRIP_SIG_ISS || undefined;

const serveGrip = new ServeGrip({
  grip: { control_uri: controlUri, key: sigKey, verify_key: sigKey, verify_iss: sigIss },
});

function text(res, code, body, type = 'text/plain') {
  res.writeHead(code, { 'Content-Type': type });
  res.end(body);
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://backend.invalid');
  if (url.pathname === '/plain') {
    text(res, 200, 'plain response from backend\n');
    return;
  }
  if (url.pathname !== '/stream' && url.pathname !== '/poll') {
    text(res, 404, `no route for ${url.pathname}\n`);
    return;
  }
  if (!(await serveGrip.run(req, res))) return;
  const channel = url.searchParams.get('channel');
  if (!channel) {
    text(res, 400, 'channel query parameter required\n');
    return;
  }
  const sig = req.headers['grip-sig'];
  if (!req.grip.isProxied || typeof sig !== 'string') {
    text(res, 403, 'backend: request not proxied by a GRIP proxy (no Grip-Sig header)\n');
    return;
  }
  if (!(await validateSig(sig, sigKey, sigIss))) {
    text(res, 403, `backend: Grip-Sig does not verify with the configured key${sigIss ? ` and iss ${sigIss}` : ''}\n`);
    return;
  }
  const gi = res.grip.startInstruct();
  gi.addChannel(channel);
  if (url.pathname === '/stream') {
    gi.setHoldStream();
    text(res, 200, ':stream open\n\n', 'text/event-stream');
    return;
  }
  const timeout = Number.parseInt(url.searchParams.get('timeout') ?? '20', 10);
  gi.setHoldLongPoll(Number.isInteger(timeout) && timeout > 0 ? timeout : 20);
  text(res, 200, '{"messages":[]}\n', 'application/json');
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => {
    console.error('backend error:', err);
    if (!res.headersSent) text(res, 500, `backend error: ${err && err.message}\n`);
    else res.end();
  });
});

server.on('error', (err) => {
  console.error(`backend: ${err.message}`);
  process.exit(1);
});

server.listen(port, '127.0.0.1', () => {
  console.log('ready');
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 1000).unref();
  });
}
