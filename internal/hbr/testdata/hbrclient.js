// Test driver for the HBR API tests: calls Coffer through the real Alibaba
// Cloud Node.js clients. It reads one JSON command per line on stdin and
// writes one JSON result per line on stdout:
//   {"client": "pop" | "openapi", "endpoint": "127.0.0.1:PORT",
//    "akid": ..., "secret": ..., "action": ..., "method": "GET" | "POST",
//    "query": {...}, "body": {...}}
// -> {"ok": true, "body": {...}} or
//    {"ok": false, "code": ..., "status": N, "message": ...}
// "pop" is @alicloud/pop-core (V2 HMAC-SHA1 signatures: every parameter,
// query and body, goes where the method puts it); "openapi" is
// @alicloud/openapi-client with signatureAlgorithm ACS3-HMAC-SHA256 (V3),
// query parameters in the query and body parameters as a form body.
'use strict';

const readline = require('readline');
const RPCClient = require('@alicloud/pop-core').RPCClient;
const OpenApi = require('@alicloud/openapi-client');
const OpenApiUtil = require('@alicloud/openapi-util').default;
const Util = require('@alicloud/tea-util');

async function callPop(c) {
  const client = new RPCClient({
    accessKeyId: c.akid, accessKeySecret: c.secret,
    endpoint: 'http://' + c.endpoint, apiVersion: '2017-09-08',
  });
  const params = Object.assign({}, c.query || {}, c.body || {});
  try {
    const body = await client.request(c.action, params, { method: c.method || 'POST', formatParams: false, timeout: 30000 });
    return { ok: true, body };
  } catch (err) {
    const status = err.entry && err.entry.response ? err.entry.response.statusCode : 0;
    return { ok: false, code: err.code || String(err.name), status, message: err.data ? err.data.Message : String(err.message) };
  }
}

async function callOpenApi(c) {
  const config = new OpenApi.Config({
    accessKeyId: c.akid, accessKeySecret: c.secret, endpoint: c.endpoint, protocol: 'http',
    signatureAlgorithm: 'ACS3-HMAC-SHA256',
  });
  const client = new OpenApi.default(config);
  const params = new OpenApi.Params({
    action: c.action, version: '2017-09-08', protocol: 'HTTP', pathname: '/', method: c.method || 'POST',
    authType: 'AK', style: 'RPC', reqBodyType: 'formData', bodyType: 'json',
  });
  const req = new OpenApi.OpenApiRequest({ query: OpenApiUtil.query(c.query || {}) });
  if (c.body && Object.keys(c.body).length > 0) {
    req.body = c.body;
  }
  try {
    const res = await client.callApi(params, req, new Util.RuntimeOptions({ autoretry: false, readTimeout: 30000 }));
    return { ok: true, body: res.body };
  } catch (err) {
    const data = err.data || {};
    return { ok: false, code: err.code || String(err.name), status: data.statusCode || 0, message: data.Message || String(err.message) };
  }
}

const rl = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
rl.on('line', (line) => {
  queue = queue.then(async () => {
    let out;
    try {
      const c = JSON.parse(line);
      out = c.client === 'pop' ? await callPop(c) : await callOpenApi(c);
    } catch (err) {
      out = { ok: false, code: 'DriverError', status: 0, message: String(err && err.stack || err) };
    }
    process.stdout.write(JSON.stringify(out) + '\n');
  });
});
