// Publishes one item to a GRIP proxy with @fanoutio/grip's Publisher, the
// way a backend application would. Used by gripd's integration tests.
//
//   node js/publish.js --control-uri URI --channel CH --stream CONTENT
//   node js/publish.js --control-uri URI --channel CH --close
//   node js/publish.js --control-uri URI --channel CH --response BODY [--code N] [--header K:V]...
//
// Options:
//   --iss ISS --key KEY   control-API auth: a JWT (HS256) with claim iss=ISS signed with KEY
//                         (Publisher config {control_uri, control_iss, key})
//   --id ID               item id
//
// GRIP_CONTROL_URI in the environment stands in for --control-uri.
// Exits 0 and prints "published" when the proxy accepted the item (2xx);
// exits 1 with "publish failed: HTTP <status>: <body>" on stderr otherwise;
// exits 2 on a usage error.

import { parseArgs } from 'node:util';
import { Publisher, HttpStreamFormat, HttpResponseFormat } from '@fanoutio/grip';

function usage(msg) {
  console.error(`publish.js: ${msg}`);
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      'control-uri': { type: 'string' },
      channel: { type: 'string' },
      stream: { type: 'string' },
      close: { type: 'boolean' },
      response: { type: 'string' },
      code: { type: 'string' },
      header: { type: 'string', multiple: true },
      id: { type: 'string' },
      iss: { type: 'string' },
      key: { type: 'string' },
    },
    strict: true,
  }));
} catch (err) {
  usage(err.message);
}

const controlUri = values['control-uri'] ?? process.env.GRIP_CONTROL_URI;
if (!controlUri) usage('--control-uri (or GRIP_CONTROL_URI) is required');
if (!values.channel) usage('--channel is required');
const kinds = [values.stream !== undefined, values.close === true, values.response !== undefined].filter(Boolean).length;
if (kinds !== 1) usage('exactly one of --stream, --close, --response is required');
if ((values.iss === undefined) !== (values.key === undefined)) usage('--iss and --key go together');

const config = { control_uri: controlUri };
if (values.iss !== undefined) {
  config.control_iss = values.iss;
  config.key = values.key;
}
const publisher = new Publisher(config);

try {
  if (values.response !== undefined) {
    const headers = {};
    for (const h of values.header ?? []) {
      const i = h.indexOf(':');
      if (i <= 0) usage(`bad --header ${h}, want Name:value`);
      headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
    }
    const code = values.code !== undefined ? Number.parseInt(values.code, 10) : undefined;
    await publisher.publishHttpResponse(values.channel, new HttpResponseFormat({ code, headers: Object.keys(headers).length ? headers : null, body: values.response }), values.id);
  } else if (values.close) {
    await publisher.publishHttpStream(values.channel, new HttpStreamFormat(null, true), values.id);
  } else {
    await publisher.publishHttpStream(values.channel, new HttpStreamFormat(values.stream), values.id);
  }
} catch (err) {
  // @fanoutio/grip throws a PublishException (not an Error) carrying the
  // HTTP status in context.statusCode (-1 when the request itself failed).
  const status = err?.context?.statusCode;
  const body = err?.context?.httpBody;
  const detail = typeof body === 'string' ? body.trim() : (err?.message ?? String(err));
  console.error(`publish failed: HTTP ${status ?? '?'}: ${detail}`);
  process.exit(1);
}
console.log('published');
