// The hosted token proxy: one Fetch-API handler, `export default { fetch(request, env) }`, that runs
// unchanged on Cloudflare Workers, Vercel (api/[...path].js re-exports it), Deno (Deno.serve) and
// Node >= 20 (./node.js). Replicate's API sends no CORS headers, so a deployed page calls this instead.
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
//                                           token; a 401/403 is retried once with it (policy.js).
// A browser request whose Origin is neither this handler's own nor one of env.ALLOWED_ORIGINS
// (comma-separated) is refused (403) before anything is forwarded. Refusals are problem+json with
// "source": "proxy"; upstream answers (errors included) pass through with their status and type.
// Nothing is stored; the log line is method, path and status: never a header, never a query string.

import { fileHostAllowed, tokenAllowed } from "./policy.js";

const DEFAULT_API_BASE = "https://api.replicate.com/v1";
// Replicate's files API takes files under 100 MB; the multipart upload adds its part headers.
const MAX_BODY = 100 * 1000 * 1000 + 64 * 1024;
const MAX_ANSWER = 64 * 1024 * 1024; // an upstream answer or output file: the embedding is 8 MiB
const UPSTREAM_TIMEOUT_MS = 60_000;
const CANCEL_AFTER = 600;
const MAX_HOPS = 3;
const PREDICTION = /^\/api\/predictions\/([A-Za-z0-9_-]{1,64})$/;
const CANCEL = /^\/api\/predictions\/([A-Za-z0-9_-]{1,64})\/cancel$/;
const MODEL = /^\/api\/models\/([A-Za-z0-9_.-]{1,100})\/([A-Za-z0-9_.-]{1,100})$/;
const PREFER = /^wait(=([1-9]|[1-5][0-9]|60))?$/; // Replicate's sync mode: 1..60 seconds

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

/** The request's body, read up to MAX_BODY (413 past it, before or while reading). */
async function body(request) {
  const declared = request.headers.get("Content-Length");
  if (declared !== null && !/^\d+$/.test(declared)) throw new Refusal(400, "Content-Length is not a number of bytes");
  const limit = `the request body is over this proxy's ${Math.floor(MAX_BODY / 1_000_000)} MB limit`;
  if (declared !== null && Number(declared) > MAX_BODY) throw new Refusal(413, limit);
  const data = await read(request.body, MAX_BODY);
  if (data === null) throw new Refusal(413, limit);
  return data;
}

/** A stream's bytes, or null once more than `cap` came. */
async function read(stream, cap) {
  if (!stream) return new Uint8Array(0);
  const reader = stream.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > cap) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
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

/** The upstream's answer passed back as it came (status, type, body), within MAX_ANSWER. */
async function relay(response) {
  if (response.status >= 300 && response.status < 400) {
    await response.body?.cancel().catch(() => {});
    throw new Refusal(502, "the upstream redirected to a host this proxy does not fetch from");
  }
  const payload = await read(response.body, MAX_ANSWER);
  if (payload === null) throw new Refusal(502, "the upstream's answer is too large");
  const headers = { "Content-Type": response.headers.get("Content-Type") || "application/octet-stream" };
  const retryAfter = response.headers.get("Retry-After");
  if (retryAfter) headers["Retry-After"] = retryAfter;
  const empty = [204, 205, 304].includes(response.status);
  return new Response(empty ? null : payload, { status: response.status, headers });
}

async function forward(request, method, url, extra = {}) {
  const headers = { Accept: "application/json", ...extra };
  let payload;
  if (method === "POST") {
    payload = await body(request);
    if (payload.byteLength) headers["Content-Type"] = request.headers.get("Content-Type") || "application/json";
  }
  const auth = request.headers.get("Authorization");
  if (auth) headers.Authorization = auth;
  return relay(await send(url, { method, headers, body: payload?.byteLength ? payload : undefined }));
}

/** An output file: without the token first (delivery links are usually pre-signed), then once with
 * it where policy.js allows. Redirects are followed only to hosts it could fetch, and never with it. */
async function download(request, url, config) {
  if (!fileHostAllowed(url, config.base)) throw new Refusal(403, "only the upstream's output files can be fetched");
  const auth = request.headers.get("Authorization");
  let target = new URL(url).href;
  for (let hop = 0; hop <= MAX_HOPS; hop++) {
    const response = await send(target, { method: "GET" });
    const location = response.headers.get("Location");
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel().catch(() => {});
      target = new URL(location, target).href;
      if (!fileHostAllowed(target, config.base)) break;
      continue;
    }
    if ([401, 403].includes(response.status) && auth && tokenAllowed(target, config.base)) {
      await response.body?.cancel().catch(() => {});
      return relay(await send(target, { method: "GET", headers: { Authorization: auth } }));
    }
    return relay(response);
  }
  throw new Refusal(502, "the upstream redirected to a host this proxy does not fetch from");
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
  // As the Python proxy answers: a GET of anything else is 404; another method on a known path, 405.
  const known = ["/api/predictions", "/api/files"].includes(pathname) || [PREDICTION, CANCEL, MODEL].some((p) => p.test(pathname));
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
