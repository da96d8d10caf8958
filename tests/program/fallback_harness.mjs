// Runs the rendered fallback Worker (argv[2], an .mjs file) under Node against a stubbed origin.
// For each scenario: the global `fetch` the Worker calls is replaced by one origin behaviour, one
// request goes through the Worker's fetch handler, and what came back is printed as one JSON line
// per scenario (tests/program/test_fallback_worker.py asserts on them).
import { pathToFileURL } from "node:url";

const worker = (await import(pathToFileURL(process.argv[2]).href)).default;
const SHOP = process.argv[3] || "https://shop.example.com";

const origins = {
  up: async () => new Response("<html>shop</html>", { status: 200, headers: { "content-type": "text/html" } }),
  notFound: async () => new Response("no such product", { status: 404 }),
  error500: async () => new Response("fatal error", { status: 500 }),
  error502: async () => new Response("bad gateway", { status: 502 }),
  cloudflare521: async () => new Response("web server is down", { status: 521 }),
  cloudflare522: async () => new Response("connection timed out", { status: 522 }),
  cloudflare530: async () => new Response("origin DNS error", { status: 530 }),
  refused: async () => { throw new TypeError("fetch failed: connect ECONNREFUSED"); },
  // Answers after 10 s unless the caller gives up first, as a hung origin does.
  slow: (request, init) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve(new Response("late", { status: 200 })), 10000);
    const signal = init && init.signal;
    if (signal) {
      signal.addEventListener("abort", () => { clearTimeout(timer); reject(signal.reason); });
    }
  }),
};

const scenarios = JSON.parse(process.argv[4]);
for (const { name, origin, path, method } of scenarios) {
  const seen = [];
  globalThis.fetch = (request, init) => {
    seen.push({ url: request.url, method: request.method, signal: Boolean(init && init.signal) });
    return origins[origin](request, init);
  };
  const started = Date.now();
  let result;
  try {
    const response = await worker.fetch(new Request(SHOP + path, { method: method || "GET" }));
    result = {
      status: response.status,
      headers: Object.fromEntries(response.headers),
      body: await response.text(),
    };
  } catch (err) {
    result = { thrown: `${err.name}: ${err.message}` };
  }
  console.log(JSON.stringify({ name, ...result, originCalls: seen, elapsedMs: Date.now() - started }));
}
