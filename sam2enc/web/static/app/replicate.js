// Replicate through the local proxy (/api/…): the model lookup, the upload, the prediction and its
// outputs. No DOM: the page passes the token, an AbortSignal and callbacks for what it shows.
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const TERMINAL = ["succeeded", "failed", "canceled", "aborted"];

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

/** A call through the proxy; 429s are waited out as long as Replicate asks. */
export async function api(path, { token, signal, onNote = () => {}, what = "Replicate", ...init } = {}) {
  for (let attempt = 0; ; attempt++) {
    const headers = { Authorization: `Bearer ${token}`, ...(init.headers || {}) };
    if (typeof init.body === "string") headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, { ...init, headers, signal });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new Error("The local proxy could not be reached: is `python -m sam2enc.web serve` still running?");
    }
    const body = await response.json().catch(() => ({}));
    if (response.status === 429 && attempt < 6) {
      const wait = Number(response.headers.get("Retry-After")) || 2 ** attempt;
      onNote(`rate limited, retrying in ${wait} s`);
      await sleep(wait * 1000);
      continue;
    }
    if (!response.ok) throw new Error(refusal(response.status, body, what));
    return body;
  }
}

/** Ask Replicate to stop a prediction; nobody waits for the answer. */
export function cancelPrediction(id, token) {
  fetch(`/api/predictions/${id}/cancel`, { method: "POST", headers: { Authorization: `Bearer ${token}` } }).catch(() => {});
}

/**
 * Encode `file` with `model` (the text of the model field): returns the bundle's two files by name.
 * `job`: {token, signal, pollMs, live(): still wanted?, status(text), note(text), prediction(id)}.
 * Returns null when the job stopped being wanted on the way.
 */
export async function encodeOnReplicate(file, model, job) {
  const call = (path, what, init = {}) => api(path, { token: job.token, signal: job.signal, onNote: job.note, what, ...init });
  const parsed = parseModel(model);
  let version = parsed.version;
  if (!version) {
    job.status("looking up the model");
    const info = await call(`/api/models/${parsed.owner}/${parsed.name}`, `the model ${parsed.owner}/${parsed.name}`);
    version = info.latest_version?.id;
    if (!version) throw new Error(`${parsed.owner}/${parsed.name} has no version yet: push one, or give owner/name:version.`);
  }
  if (!job.live()) return null;
  job.status("uploading the photo");
  const form = new FormData();
  form.append("content", file, file.name || "photo");
  const upload = await call("/api/files", "the photo upload", { method: "POST", body: form });
  if (!job.live()) return null;
  let prediction = await call("/api/predictions", "the prediction", { method: "POST", body: JSON.stringify({ version, input: { image: upload.urls.get } }) });
  job.prediction(prediction.id);
  while (job.live() && !TERMINAL.includes(prediction.status)) {
    job.status(prediction.status);
    await sleep(job.pollMs);
    if (!job.live()) return null;
    prediction = await call(`/api/predictions/${prediction.id}`, "the status request");
  }
  if (!job.live()) return null;
  if (prediction.status !== "succeeded") {
    const why = prediction.status === "aborted" ? "its deadline passed before it started" : prediction.error || "no reason given";
    throw new Error(`The prediction ${prediction.status}: ${why}.`);
  }
  job.status("downloading the bundle");
  const urls = Array.isArray(prediction.output) ? prediction.output : Object.values(prediction.output || {});
  const files = {}; // by file name: Cog lists outputs in upload-completion order
  for (const url of urls) {
    const response = await fetch(`/api/files?url=${encodeURIComponent(url)}`, { headers: { Authorization: `Bearer ${job.token}` }, signal: job.signal });
    if (!response.ok) throw new Error(`Could not download ${url} (${response.status}).`);
    files[new URL(url).pathname.split("/").pop()] = await response.arrayBuffer();
  }
  for (const name of ["embedding.bin", "manifest.json"]) {
    if (!files[name]) throw new Error(`The prediction succeeded but returned no ${name}: the model's upload of that file failed. Retry.`);
  }
  return { id: prediction.id, manifest: files["manifest.json"], payload: files["embedding.bin"] };
}
