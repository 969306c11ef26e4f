// The hosted token proxy: one Fetch-API handler, `export default { fetch(request, env) }`, that runs
// unchanged on Cloudflare Workers, Vercel (examples/vercel/api/proxy.js re-exports it), Deno
// (Deno.serve) and Node >= 20 (./node.js). Replicate's API sends no CORS headers, so a deployed page
// calls this instead.
//
// It forwards exactly what the local Python proxy (sam2enc/web/proxy.py) forwards, with the caller's
// Authorization header passed through unchanged to env.REPLICATE_API_BASE (default
// https://api.replicate.com/v1):
//   POST /api/files                      -> POST {base}/files (the photo, multipart)
//   GET  /api/models/<owner>/<name>      -> GET  {base}/models/<owner>/<name>
//   POST /api/predictions                -> POST {base}/predictions, with Cancel-After (env.CANCEL_AFTER
//                                           seconds, 600 by default, 0: none) and a well-formed
//                                           `Prefer: wait[=N]` passed on
//   GET  /api/predictions/<id>, POST /api/predictions/<id>/cancel
//   GET  /api/files?url=<output URL>     -> the output file, from the upstream's origin or
//                                           https://(*.)replicate.delivery only, first without the
//                                           token; a 401/403 is retried once with it, a redirect
//                                           followed without it to those hosts only (policy.js).
// Bodies stream through, both ways: a POST needs a Content-Length (411 without one, 413 over 100 MB,
// before anything is read) and its body goes upstream as it arrives; an answer goes back as it comes
// (refused when it declares more than 64 MiB, cut off once more than that came when it declares none). Nothing is
// held whole in memory, so a 100 MB upload fits a 128 MB Workers isolate.
// A browser request whose Origin is neither this handler's own nor one of env.ALLOWED_ORIGINS
// (comma-separated) is refused (403) before anything is forwarded. Refusals are problem+json with
// "source": "proxy"; upstream answers (errors included) pass through with their status, type and
// Retry-After, which CORS exposes to the page (Access-Control-Expose-Headers) for its backoff.
// Nothing is stored; the log line is method, path and status: never a header, never a query string.

import { fileHostAllowed, MAX_REDIRECTS, redirectTarget, tokenAllowed } from "./policy.js";

const DEFAULT_API_BASE = "https://api.replicate.com/v1";
// Replicate's files API takes files under 100 MB; the multipart upload adds its part headers.
const MAX_BODY = 100 * 1000 * 1000 + 64 * 1024;
const MAX_ANSWER = 64 * 1024 * 1024; // an upstream answer or output file: the embedding is 8 MiB
const UPSTREAM_TIMEOUT_MS = 60_000;
const CANCEL_AFTER = 600;
const PREDICTION = /^\/api\/predictions\/([A-Za-z0-9_-]{1,64})$/;
const CANCEL = /^\/api\/predictions\/([A-Za-z0-9_-]{1,64})\/cancel$/;
const MODEL = /^\/api\/models\/([A-Za-z0-9_.-]{1,100})\/([A-Za-z0-9_.-]{1,100})$/;
const PREFER = /^wait(=([1-9]|[1-5][0-9]|60))?$/; // Replicate's sync mode: 1..60 seconds
const EXPOSED = "Retry-After"; // the answer headers a page on an allowed origin may read

class Refusal extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

function problem(status, detail) {
  const body = { title: "refused by the sam2enc proxy", detail, status, source: "proxy" };
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/problem+json" } });
}

function settings(env = {}) {
  const base = String(env.REPLICATE_API_BASE || DEFAULT_API_BASE).replace(/\/+$/, "");
  const origins = String(env.ALLOWED_ORIGINS || "").split(",").map((o) => o.trim().replace(/\/+$/, "")).filter(Boolean);
  const raw = env.CANCEL_AFTER === undefined || env.CANCEL_AFTER === "" ? CANCEL_AFTER : Number(env.CANCEL_AFTER);
  return { base, origins, cancelAfter: Number.isInteger(raw) && raw >= 5 ? raw : 0 };
}

/** The request body's declared length, checked before a byte is read (411 without one, 413 over
 * MAX_BODY). The runtime's HTTP framing holds the body to it, so it streams on unread. */
function declaredLength(request) {
  const declared = request.headers.get("Content-Length");
  if (declared === null) {
    if (request.body === null) return 0;
    throw new Refusal(411, "send the body with a Content-Length");
  }
  if (!/^\d+$/.test(declared)) throw new Refusal(400, "Content-Length is not a number of bytes");
  if (Number(declared) > MAX_BODY) throw new Refusal(413, `the request body is over this proxy's ${Math.floor(MAX_BODY / 1_000_000)} MB limit`);
  return Number(declared);
}

/** `stream` passed on as it flows, erroring once more than `cap` bytes came. */
function capped(stream, cap) {
  let size = 0;
  return stream.pipeThrough(
    new TransformStream({
      transform(chunk, controller) {
        size += chunk.byteLength;
        if (size > cap) controller.error(new Error("the upstream's answer is too large"));
        else controller.enqueue(chunk);
      },
    }),
  );
}

/** One upstream request, never following a redirect (it could carry the token elsewhere). */
async function send(url, init) {
  try {
    return await fetch(url, { ...init, redirect: "manual", signal: AbortSignal.timeout(UPSTREAM_TIMEOUT_MS) });
  } catch (error) {
    if (error?.name === "TimeoutError" || error?.name === "AbortError") throw new Refusal(504, "the upstream did not answer in time");
    throw new Refusal(502, "the upstream could not be reached");
  }
}

async function discard(response) {
  await response.body?.cancel().catch(() => {});
}

/** The upstream's answer passed back as it came (status, type, Retry-After, body), streamed: refused
 * when it declares more than MAX_ANSWER, cut off once more than that came. */
async function relay(response) {
  if (response.status >= 300 && response.status < 400) {
    await discard(response);
    throw new Refusal(502, "the upstream redirected an API call: the token follows no redirect");
  }
  const declared = response.headers.get("Content-Length");
  if (declared !== null && Number(declared) > MAX_ANSWER) {
    await discard(response);
    throw new Refusal(502, "the upstream's answer is too large");
  }
  const headers = { "Content-Type": response.headers.get("Content-Type") || "application/octet-stream" };
  const retryAfter = response.headers.get("Retry-After");
  if (retryAfter) headers["Retry-After"] = retryAfter;
  if ([204, 205, 304].includes(response.status) || !response.body) {
    await discard(response);
    return new Response(null, { status: response.status, headers });
  }
  // A declared length the runtime holds the body to (HTTP framing) is passed on as the upstream's own
  // stream: in workerd that stays native, no JavaScript per chunk (an 8 MiB bundle: 0.04 s, +2 MB, where
  // a TransformStream took 0.3 s and +20 MB). Anything else (no length, or decoded on the way: gzip) is
  // counted as it flows.
  const whole = declared !== null && /^\d+$/.test(declared) && !response.headers.has("Content-Encoding");
  return new Response(whole ? response.body : capped(response.body, MAX_ANSWER), { status: response.status, headers });
}

async function forward(request, method, url, extra = {}) {
  const headers = { Accept: "application/json", ...extra };
  let body;
  if (method === "POST") {
    const length = declaredLength(request);
    if (length > 0) {
      headers["Content-Type"] = request.headers.get("Content-Type") || "application/json";
      headers["Content-Length"] = String(length); // Node's fetch streams it as declared; Workers knows it
      body = request.body;
    } else if (request.body) {
      await request.body.cancel().catch(() => {});
    }
  }
  const auth = request.headers.get("Authorization");
  if (auth) headers.Authorization = auth;
  return relay(await send(url, { method, headers, body, duplex: body ? "half" : undefined }));
}

/** An output file under policy.js: first without the token (delivery links are usually pre-signed);
 * a 401/403 retried once with it, at the URL that asked, where tokenAllowed; a redirect followed
 * without it, only to a URL fileHostAllowed, at most MAX_REDIRECTS times. */
async function download(request, url, config) {
  if (!fileHostAllowed(url, config.base)) throw new Refusal(403, "only the upstream's output files can be fetched");
  const auth = request.headers.get("Authorization");
  let target = new URL(url).href;
  let sending = null;
  let spent = false;
  for (let redirects = 0; ; ) {
    const response = await send(target, { method: "GET", headers: sending ? { Authorization: sending } : {} });
    if (response.status >= 300 && response.status < 400) {
      await discard(response);
      const next = redirectTarget(response.headers.get("Location"), target, config.base);
      if (next === null) throw new Refusal(502, "the upstream redirected to a host outside the download policy");
      if (redirects >= MAX_REDIRECTS) throw new Refusal(502, `the upstream redirected more than ${MAX_REDIRECTS} times`);
      [target, sending, redirects] = [next, null, redirects + 1];
      continue;
    }
    if ([401, 403].includes(response.status) && auth && !spent && tokenAllowed(target, config.base)) {
      await discard(response);
      [sending, spent] = [auth, true];
      continue;
    }
    return relay(response);
  }
}

async function route(request, url, config) {
  const { pathname } = url;
  const method = request.method;
  let match;
  if (method === "POST" && pathname === "/api/predictions") {
    const extra = config.cancelAfter ? { "Cancel-After": `${config.cancelAfter}s` } : {};
    const prefer = (request.headers.get("Prefer") || "").trim();
    if (PREFER.test(prefer)) extra.Prefer = prefer;
    return forward(request, "POST", `${config.base}/predictions`, extra);
  }
  if (method === "GET" && (match = PREDICTION.exec(pathname))) return forward(request, "GET", `${config.base}/predictions/${match[1]}`);
  if (method === "POST" && (match = CANCEL.exec(pathname))) return forward(request, "POST", `${config.base}/predictions/${match[1]}/cancel`);
  if (method === "GET" && (match = MODEL.exec(pathname))) return forward(request, "GET", `${config.base}/models/${match[1]}/${match[2]}`);
  if (method === "POST" && pathname === "/api/files") {
    if (!(request.headers.get("Content-Type") || "").startsWith("multipart/form-data;")) {
      throw new Refusal(415, "upload the photo as multipart/form-data");
    }
    return forward(request, "POST", `${config.base}/files`);
  }
  if (method === "GET" && pathname === "/api/files") return download(request, url.searchParams.get("url") || "", config);
  // The page's same-origin probe: answered here (200, as the Python proxy does), no upstream, no token.
  if (method === "GET" && pathname === "/api/") return new Response(JSON.stringify({ source: "proxy", proxy: "sam2enc" }), { headers: { "Content-Type": "application/json" } });
  // As the Python proxy answers: a GET of anything else is 404; another method on a known path, 405.
  const known = ["/api/", "/api/predictions", "/api/files"].includes(pathname) || [PREDICTION, CANCEL, MODEL].some((p) => p.test(pathname));
  throw known && !["GET", "HEAD"].includes(method) ? new Refusal(405, "method not allowed") : new Refusal(404, "not found");
}

/** CORS for an allowed cross-origin page; null: refused (another origin, or "null"). */
function cors(request, url, config) {
  const origin = request.headers.get("Origin");
  if (origin === null || origin === url.origin) return {};
  if (!config.origins.includes(origin)) return null;
  return {
    "Access-Control-Allow-Origin": origin,
    "Access-Control-Allow-Methods": "GET, POST",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Prefer",
    "Access-Control-Expose-Headers": EXPOSED,
    "Access-Control-Max-Age": "600",
    Vary: "Origin",
  };
}

async function handle(request, env) {
  const url = new URL(request.url);
  const config = settings(env);
  const allowed = cors(request, url, config);
  if (allowed === null) return problem(403, "this proxy serves its own pages only: the request came from another origin");
  let response;
  if (request.method === "OPTIONS") {
    response = new Response(null, { status: 204 });
  } else {
    try {
      response = await route(request, url, config);
    } catch (error) {
      if (!(error instanceof Refusal)) throw error;
      response = problem(error.status, error.message);
    }
  }
  for (const [name, value] of Object.entries(allowed)) response.headers.set(name, value);
  response.headers.set("Cache-Control", "no-store");
  return response;
}

export default {
  /** @param {Request} request @param {Record<string, string>} [env] */
  async fetch(request, env) {
    let response;
    try {
      response = await handle(request, env);
    } catch {
      response = problem(500, "the proxy failed");
    }
    console.log(`${request.method} ${new URL(request.url).pathname} ${response.status}`);
    return response;
  },
};
