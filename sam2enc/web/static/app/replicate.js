// Replicate through the token proxy (<proxy>/api/…): the model lookup, the upload, the prediction and
// its outputs. No DOM: the page passes the token, an AbortSignal and callbacks for what it shows.
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** `ms`, or less: rejects with an AbortError as soon as `signal` aborts. */
function pause(ms, signal) {
  return new Promise((resolve, reject) => {
    const stop = () => reject(new DOMException("The wait was aborted.", "AbortError"));
    if (signal?.aborted) return stop();
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      stop();
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
/** Retries of one call, as sam2enc/client.py (replicate-javascript's default): 429s, and 5xx on a GET. */
export const RETRIES = 5;
/** A host that caps request bodies below Replicate's 100 MB: Vercel functions take 4.5 MB. */
const HOST_BODY_LIMIT = 4.5e6;
const TERMINAL = ["succeeded", "failed", "canceled", "aborted"];
/** Sync mode: the create asks Replicate to hold its answer up to this many seconds (1..60; the proxy
 * drops anything else), as the official clients' run() does; an unfinished answer is then polled. */
export const SYNC_WAIT = 60;
const POLL_FIRST = 250; // ms between GETs once a sync answer came back unfinished (as sam2enc/client.py)...
const POLL_BACKOFF_AFTER = 3000; // ...500 ms after half that, then doubling every 3 s...
const POLL_MAX = 2000; // ...up to this: a cold boot on Replicate takes minutes
/** Timing marks for the round-trip bench (tools/bench_roundtrip.py): `sam2enc:<name>` on the page's clock. */
export const mark = (name) => performance.mark(`sam2enc:${name}`);

/** Milliseconds before the next GET, `elapsed` ms after polling began: a prediction that outlived the sync
 * window is usually about to end (250 ms, then 500 ms); one still queued after a few seconds may take
 * minutes (doubling every 3 s up to 2 s). */
export function pollDelay(elapsed) {
  if (elapsed < POLL_BACKOFF_AFTER / 2) return POLL_FIRST;
  return Math.min(POLL_MAX, 2 * POLL_FIRST * 2 ** (Math.max(0, elapsed - POLL_BACKOFF_AFTER) / 3000));
}

let base = null; // the proxy's API ("…/api/"), from app/site.js's proxyApi; null: no proxy, no call
/** Where the calls go: the base URL of the proxy's API, or null when the site has none. */
export function useProxy(apiBase) {
  base = apiBase;
}
function endpoint(path) {
  if (!base) throw new Error("This site has no token proxy, so it cannot encode on Replicate: open a photo with its bundle instead.");
  return new URL(path, base).href;
}

/** Replicate model field: owner/name, owner/name:version, a version id, or a replicate.com URL. */
export function parseModel(text) {
  const value = text.trim();
  let m = value.match(/^https?:\/\/(?:www\.)?replicate\.com\/([\w.-]+)\/([\w.-]+)(?:\/versions\/(\w+))?\/?(?:[?#].*)?$/i);
  if (m) return m[3] ? { version: m[3] } : { owner: m[1], name: m[2] };
  if ((m = value.match(/^([\w.-]+)\/([\w.-]+):(\w+)$/))) return { version: m[3] };
  if ((m = value.match(/^([\w.-]+)\/([\w.-]+)$/))) return { owner: m[1], name: m[2] };
  if (/^\w{8,}$/.test(value)) return { version: value };
  throw new Error("Give the model as owner/name, owner/name:version, a version id, or its replicate.com URL.");
}

/** One sentence for a refused call: the local proxy's own answers say `"source": "proxy"`; when it could
 * not reach its upstream it names it (`upstream`), and that is what the user must hear. */
export function refusal(status, body, what) {
  const detail = body?.detail || body?.title || `HTTP ${status}`;
  if (body?.source === "proxy" && body.upstream) {
    const how = status === 504 ? "did not answer in time" : "could not be reached";
    return `The upstream ${body.upstream} ${how} for ${what} (the local proxy answered ${status}): check the network, or the proxy's --upstream.`;
  }
  return body?.source === "proxy" ? `The local proxy refused ${what} (${status}): ${detail}`
    : `Replicate refused ${what} (${status}): ${detail}`;
}

/** Seconds to wait before asking again after attempt `attempt` (0, 1, ...): the answer's Retry-After, in
 * seconds or as an HTTP date (never negative), else 0.5 s doubling: as sam2enc/client.py's _retry_after. */
export function retryDelay(retryAfter, attempt) {
  const value = (retryAfter || "").trim();
  if (/^\d+$/.test(value)) return Number(value);
  const date = value ? Date.parse(value) : NaN;
  if (!Number.isNaN(date)) return Math.max(0, (date - Date.now()) / 1000);
  return 0.5 * 2 ** attempt;
}

/** An Error whose message is the sentence to show, with the answer's `status` and `body` when one came
 * (`unreachable` when none did). */
function failure(message, fields) {
  return Object.assign(new Error(message), fields);
}

/** A call through the proxy. Replicate's 429s (any call) and 5xx (a GET: asking again changes nothing)
 * are asked again up to RETRIES times, after the answer's Retry-After (the proxies pass it on and expose
 * it to CORS); the proxy's own refusals are not. */
export async function api(path, { token, signal, onNote = () => {}, what = "Replicate", ...init } = {}) {
  const url = endpoint(path);
  const method = (init.method || "GET").toUpperCase();
  for (let attempt = 0; ; attempt++) {
    const headers = { Authorization: `Bearer ${token}`, ...(init.headers || {}) };
    if (typeof init.body === "string") headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(url, { ...init, headers, signal });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      const where = new URL(base).origin;
      throw failure(where === globalThis.location?.origin ? "The local proxy could not be reached: is `python -m sam2enc.web serve` still running?"
        : `The token proxy at ${where} could not be reached: check the network, or the site's --proxy.`, { unreachable: true });
    }
    const body = await response.json().catch(() => ({}));
    const again = response.status === 429 || (method === "GET" && response.status >= 500 && body?.source !== "proxy");
    if (again && attempt < RETRIES) {
      const wait = retryDelay(response.headers.get("Retry-After"), attempt);
      const why = response.status === 429 ? "rate limited" : `Replicate answered ${response.status}`;
      onNote(`${why}, retrying in ${Math.round(wait * 10) / 10} s`);
      await pause(wait * 1000, signal);
      continue;
    }
    if (!response.ok) throw failure(refusal(response.status, body, what), { status: response.status, body });
    return body;
  }
}

/** The sentence for a photo upload of `bytes` that the proxy's host refused as too large (413) before
 * the proxy saw it, or (`unreachable`) that got no answer a cross-origin page may read: a host's own 413
 * need carry no CORS headers, and the browser then reports no answer at all. */
export function tooLarge(bytes, unreachable = false) {
  const mb = (bytes / 1e6).toFixed(1);
  const instead = "upload a JPEG under 4.5 MB, or use a proxy on Cloudflare Workers or `python -m sam2enc.web serve` (100 MB)";
  return unreachable
    ? `The token proxy could not be reached with this ${mb} MB photo; if it runs on Vercel, whose functions take uploads up to 4.5 MB, ${instead}.`
    : `The ${mb} MB photo is over the upload limit of the token proxy's host (Vercel functions take 4.5 MB): ${instead}.`;
}

/** Ask Replicate to stop a prediction; nobody waits for the answer. */
export function cancelPrediction(id, token) {
  if (base) fetch(endpoint(`predictions/${id}/cancel`), { method: "POST", headers: { Authorization: `Bearer ${token}` } }).catch(() => {});
}

/** The prediction's id in its `urls.get` (what to poll), else its `id`. */
const pollId = (prediction) => prediction.urls?.get?.match(/\/predictions\/([\w-]+)\/?$/)?.[1] || prediction.id;

/**
 * Create the prediction in sync mode (`Prefer: wait=N`; `wait` 0: none). The create is not tied to the
 * job's AbortSignal: a Cancel pressed while Replicate holds the answer cannot name the prediction yet, so
 * the answer is awaited in the background and that prediction canceled as soon as its id is known.
 */
async function create(body, job, wait) {
  const headers = wait ? { Prefer: `wait=${wait}` } : {};
  const answer = api("predictions", { token: job.token, onNote: job.note, what: "the prediction", method: "POST", body, headers });
  const abandoned = new Promise((resolve) => {
    if (job.signal?.aborted) resolve(null);
    job.signal?.addEventListener("abort", () => resolve(null), { once: true });
  });
  const first = await Promise.race([answer, abandoned]);
  if (first) return first;
  answer.then((prediction) => { if (!TERMINAL.includes(prediction.status)) cancelPrediction(prediction.id, job.token); }).catch(() => {});
  return null;
}

/**
 * Encode `file` with `model` (the text of the model field): returns the bundle's two files by name.
 * `job`: {token, signal, live(): still wanted?, status(text), note(text), prediction(id)}, optional
 * `wait` (sync-mode seconds, default SYNC_WAIT; 0: no Prefer) and `pollMs` (a fixed poll interval instead
 * of pollDelay's schedule). Returns null when the job stopped being wanted on the way.
 */
export async function encodeOnReplicate(file, model, job) {
  const call = (path, what, init = {}) => api(path, { token: job.token, signal: job.signal, onNote: job.note, what, ...init });
  mark("encode");
  const parsed = parseModel(model);
  let version = parsed.version;
  if (!version) {
    job.status("looking up the model");
    const info = await call(`models/${parsed.owner}/${parsed.name}`, `the model ${parsed.owner}/${parsed.name}`);
    version = info.latest_version?.id;
    if (!version) throw new Error(`${parsed.owner}/${parsed.name} has no version yet: push one, or give owner/name:version.`);
  }
  if (!job.live()) return null;
  job.status("uploading the photo");
  const form = new FormData();
  form.append("content", file, file.name || "photo");
  mark("upload-start");
  let upload;
  try {
    upload = await call("files", "the photo upload", { method: "POST", body: form });
  } catch (err) {
    if (err.status === 413 && err.body?.source !== "proxy") throw new Error(tooLarge(file.size));
    if (err.unreachable && file.size > HOST_BODY_LIMIT) throw new Error(tooLarge(file.size, true));
    throw err;
  }
  mark("upload-end");
  if (!job.live()) return null;
  const wait = Math.max(0, Math.min(SYNC_WAIT, Math.round(job.wait ?? SYNC_WAIT)));
  job.status(wait ? "waiting for the prediction" : "starting");
  mark("create-start");
  let prediction = await create(JSON.stringify({ version, input: { image: upload.urls.get } }), job, wait);
  mark("create-end");
  if (!prediction || !job.live()) return null;
  job.prediction(prediction.id);
  const polling = performance.now();
  while (job.live() && !TERMINAL.includes(prediction.status)) {
    job.status(prediction.status);
    await sleep(job.pollMs || pollDelay(performance.now() - polling));
    if (!job.live()) return null;
    prediction = await call(`predictions/${pollId(prediction)}`, "the status request");
  }
  mark("final");
  if (!job.live()) return null;
  if (prediction.status !== "succeeded") {
    const why = prediction.status === "aborted" ? "its deadline passed before it started" : prediction.error || "no reason given";
    throw new Error(`The prediction ${prediction.status}: ${why}.`);
  }
  job.status("downloading the bundle");
  mark("download-start");
  const urls = Array.isArray(prediction.output) ? prediction.output : Object.values(prediction.output || {});
  const files = {}; // by file name: Cog lists outputs in upload-completion order
  for (const url of urls) {
    const response = await fetch(endpoint(`files?url=${encodeURIComponent(url)}`), { headers: { Authorization: `Bearer ${job.token}` }, signal: job.signal });
    if (!response.ok) throw new Error(`Could not download ${url} (${response.status}).`);
    files[new URL(url).pathname.split("/").pop()] = await response.arrayBuffer();
  }
  mark("download-end");
  for (const name of ["embedding.bin", "manifest.json"]) {
    if (!files[name]) throw new Error(`The prediction succeeded but returned no ${name}: the model's upload of that file failed. Retry.`);
  }
  return { id: prediction.id, manifest: files["manifest.json"], payload: files["embedding.bin"] };
}
