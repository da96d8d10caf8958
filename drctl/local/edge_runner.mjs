// The rehearsal's Cloudflare edge: the fallback page's Worker, the very script the program uploads
// (rendered by components/fallback_worker.py), run under Node in front of the rehearsal's HAProxy,
// which plays the load balancer behind it (drctl/local/edge.py starts this).
//
//   node edge_runner.mjs WORKER.mjs LISTEN_HOST LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT
//
// Each request that arrives becomes a Fetch API Request for https://<its Host header><its path>,
// handed to the Worker's fetch handler as Cloudflare hands it one. The Worker's own `fetch` goes, as
// on Cloudflare, to what sits behind the route: here the HAProxy proxy at UPSTREAM, over plain HTTP
// with the shop's Host header; a connection that fails rejects the promise as fetch does, and the
// Worker's AbortSignal cuts it. A Worker that throws gets Cloudflare's answer to that: 500, error 1101.

import http from "node:http";
import { pathToFileURL } from "node:url";

const [workerPath, listenHost, listenPort, upstreamHost, upstreamPort] = process.argv.slice(2);
const worker = (await import(pathToFileURL(workerPath).href)).default;

// Not forwarded either way: they describe one connection, not the message.
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
  "upgrade", "content-length"]);
const NULL_BODY = new Set([101, 204, 205, 304]);

function forwardable(pairs) {
  const headers = new Headers();
  for (const [name, value] of pairs) {
    if (!HOP_BY_HOP.has(name.toLowerCase()) && name.toLowerCase() !== "host") headers.append(name, value);
  }
  return headers;
}

function rawPairs(raw) {
  const pairs = [];
  for (let i = 0; i < raw.length; i += 2) pairs.push([raw[i], raw[i + 1]]);
  return pairs;
}

// The Worker's view of the network: Cloudflare's fetch to the origin behind the route.
async function originFetch(input, init) {
  const request = new Request(input, init);
  const url = new URL(request.url);
  const body = ["GET", "HEAD"].includes(request.method) ? null : Buffer.from(await request.arrayBuffer());
  const headers = Object.fromEntries(forwardable(request.headers));
  headers.host = url.host;
  headers["content-length"] = String(body ? body.length : 0);
  const signal = request.signal;
  if (signal.aborted) throw signal.reason;
  return new Promise((resolve, reject) => {
    const outgoing = http.request(
      { host: upstreamHost, port: Number(upstreamPort), method: request.method, path: url.pathname + url.search,
        headers, agent: false },
      (res) => {
        const chunks = [];
        res.on("data", (chunk) => chunks.push(chunk));
        res.on("error", failed);
        res.on("end", () => {
          signal.removeEventListener("abort", aborted);
          const empty = NULL_BODY.has(res.statusCode) || request.method === "HEAD";
          resolve(new Response(empty ? null : Buffer.concat(chunks),
            { status: res.statusCode, statusText: res.statusMessage, headers: forwardable(rawPairs(res.rawHeaders)) }));
        });
      });
    function aborted() {
      outgoing.destroy();
      reject(signal.reason);
    }
    function failed(err) {
      signal.removeEventListener("abort", aborted);
      if (!signal.aborted) reject(new TypeError("fetch failed", { cause: err }));
    }
    signal.addEventListener("abort", aborted, { once: true });
    outgoing.on("error", failed);
    outgoing.end(body ?? undefined);
  });
}
globalThis.fetch = originFetch;

async function answer(req, res) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const withBody = !["GET", "HEAD"].includes(req.method);
  const request = new Request(`https://${req.headers.host}${req.url}`, {
    method: req.method, headers: forwardable(rawPairs(req.rawHeaders)), body: withBody ? Buffer.concat(chunks) : null,
  });
  let response;
  try {
    response = await worker.fetch(request, {}, { waitUntil() {}, passThroughOnException() {} });
  } catch (err) {
    console.error(`worker threw: ${err && err.stack ? err.stack : err}`);
    response = new Response("error code: 1101\n", { status: 500, headers: { "content-type": "text/plain" } });
  }
  const body = Buffer.from(await response.arrayBuffer());
  const headers = {};
  for (const [name, value] of response.headers) if (!HOP_BY_HOP.has(name)) headers[name] = value;
  headers["content-length"] = String(body.length);
  res.writeHead(response.status, response.statusText || undefined, headers);
  res.end(req.method === "HEAD" ? undefined : body);
}

const server = http.createServer((req, res) => {
  answer(req, res).catch((err) => {
    console.error(`edge failed: ${err && err.stack ? err.stack : err}`);
    if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
    res.end("edge failed\n");
  });
});
server.listen(Number(listenPort), listenHost, () => console.log(`edge listening on ${listenHost}:${listenPort}`));
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
