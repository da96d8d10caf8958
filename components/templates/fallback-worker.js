// woocommerce-dr fallback page: a Cloudflare Worker on the shop's route (components/fallback_worker.py
// renders the constants below, components/fallback_page.py uploads it; docs/fallback-page.md explains
// the choice).
//
// Every request goes to the origin first, so the page steps aside by itself the moment a region
// serves again. Only when no region can answer (the fetch fails or times out, or Cloudflare reports
// that it could not reach an origin: its 52x errors and 530) does the edge answer a 503 maintenance
// page instead. A 500 from the shop itself is passed on: it comes from a region that serves, and
// WordPress's own maintenance mode answers 503 too. The health path is never touched: monitors
// must keep seeing the truth.

const HEALTH_PATH = __HEALTH_PATH__;
const ORIGIN_TIMEOUT_MS = __ORIGIN_TIMEOUT_MS__;
const RETRY_AFTER_SECONDS = __RETRY_AFTER_SECONDS__;
const PAGE = __PAGE_HTML__;

// The header a drill, a rehearsal or `curl -I` can tell the page by.
export const MARKER = "x-woocommerce-dr-fallback";

// Cloudflare's answers when it reached no origin: 520 unknown, 521 web server down, 522 connection
// timed out, 523 origin unreachable, 524 a timeout occurred, 525/526 TLS handshake / invalid
// certificate, 527 Railgun, 530 origin DNS (what a load balancer with no healthy pool returns).
export const NO_ORIGIN = new Set([520, 521, 522, 523, 524, 525, 526, 527, 530]);

export function isHealthPath(pathname) {
  return pathname === HEALTH_PATH || pathname.startsWith(HEALTH_PATH + "/");
}

export function fallback(reason) {
  return new Response(PAGE, {
    status: 503,
    headers: {
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      "retry-after": String(RETRY_AFTER_SECONDS),
      [MARKER]: reason,
    },
  });
}

export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (isHealthPath(url.pathname)) {
      return fetch(request);
    }
    let response;
    try {
      response = await fetch(request, { signal: AbortSignal.timeout(ORIGIN_TIMEOUT_MS) });
    } catch (err) {
      const why = err && err.name === "TimeoutError" ? "origin timed out" : "origin unreachable";
      return fallback(why);
    }
    if (NO_ORIGIN.has(response.status)) {
      return fallback(`origin answered ${response.status}`);
    }
    return response;
  },
};
