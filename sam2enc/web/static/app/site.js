// Where the site's files are and what this deployment offers. Every URL the page and the worker use is
// resolved against the site's root (the folder of index.html), found from this module's own URL, never
// written as "/…": the same files work at a host's root, under a sub-path (a GitHub Pages project site
// lives at /<repo>/) and from `python -m sam2enc.web serve`. No DOM: the worker imports it too.
//
// config.json (written by `python -m sam2enc.web build`, served by `serve` in the same shape) says where
// the demos and models are, which onnxruntime-web builds were shipped and where the token proxy is.

/** The site's root: this module is <root>/static/app/site.js. */
export const ROOT = new URL("../../", import.meta.url);

/** A path of the site (relative, as config.json and demos/index.json write them) as a full URL. */
export const siteUrl = (path) => new URL(path, ROOT).href;

const WASM_ENTRY = "vendor/ort/ort.wasm.min.mjs"; // the WASM-only build (14 MB of wasm)
// WebGPU + WASM for browsers with JS Promise Integration (Chrome 137+): 17 MB of wasm, under the 25 MiB
// a static host takes per file (the JSEP and asyncify WebGPU builds, 28 and 27 MB, are not).
const WEBGPU_ENTRY = "vendor/ort/ort.jspi.min.mjs";

const DEFAULTS = {
  proxy: null,
  demos: "demos/index.json",
  models: "models/",
  ort: { entries: ["ort.wasm.min.mjs"], webgpu: false },
};

let config = null;
/** config.json, read once per page or worker; the defaults (no proxy, the WASM build) if it cannot be. */
export function loadConfig() {
  config ??= fetch(siteUrl("config.json"))
    .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`))))
    .then((found) => ({ ...DEFAULTS, ...found, ort: { ...DEFAULTS.ort, ...found.ort } }))
    .catch((err) => {
      console.warn(`config.json could not be read (${err.message}): no proxy, onnxruntime-web's WASM build.`);
      return DEFAULTS;
    });
  return config;
}

/** The bytes (as `as`: "blob", "arrayBuffer", "json") of the site's file `url`; one sentence naming the
 * file and the answer when it cannot be had (a 404 is not "could not be decoded"). */
export async function fetchFile(url, as, what) {
  const response = await fetch(url).catch(() => null);
  const name = new URL(url).pathname.split("/").slice(-2).join("/");
  if (!response?.ok) throw new Error(`${what} (${name}) could not be loaded (${response ? `HTTP ${response.status}` : "no answer"}).`);
  try {
    return await response[as]();
  } catch {
    throw new Error(`${what} (${name}) is not valid ${as === "json" ? "JSON" : "data"}.`);
  }
}

/** The URL of the model file `name` (decoder.onnx, model.json). */
export const modelUrl = (cfg, name) => siteUrl(`${cfg.models}${name}`);

/**
 * The onnxruntime-web entry to import for the execution providers in `order`: the WebGPU build only when
 * WebGPU is in `order`, or when it is all the site shipped. Never a file the site did not ship.
 */
export function ortEntry(cfg, order) {
  const shipped = (entry) => cfg.ort.entries.includes(entry.split("/").pop());
  const entry = order.includes("webgpu") || !shipped(WASM_ENTRY) ? WEBGPU_ENTRY : WASM_ENTRY;
  return { module: siteUrl(entry), wasmPaths: siteUrl("vendor/ort/") };
}

/** Whether the site shipped the WebGPU build, and if not, why the decoder cannot use WebGPU. */
export function webgpuShipped(cfg) {
  return cfg.ort.webgpu && cfg.ort.entries.includes(WEBGPU_ENTRY.split("/").pop()) ? null
    : "this site ships only onnxruntime-web's WASM build";
}

/**
 * The demos the site ships (demos/index.json), their files as URLs. `{demos: [], reason}` when there
 * are none: the reason is a sentence for the user.
 */
export async function loadDemos(cfg) {
  if (!cfg.demos) return { demos: [], reason: "This site was built without demos." };
  const response = await fetch(siteUrl(cfg.demos)).catch(() => null);
  if (!response?.ok) return { demos: [], reason: `The demo list could not be loaded (${response ? `HTTP ${response.status}` : "no answer"}).` };
  const index = await response.json().catch(() => null);
  if (!Array.isArray(index?.demos) || !index.demos.every((d) => d && d.photo && d.embedding && d.manifest)) {
    return { demos: [], reason: `The demo list (${cfg.demos}) is not a list of demos: rebuild the site.` };
  }
  const demos = index.demos.map((demo) => ({
    ...demo, photo: siteUrl(demo.photo), embedding: siteUrl(demo.embedding), manifest: siteUrl(demo.manifest),
  }));
  return { demos, reason: index.reason || "This site has no demo photo." };
}

/**
 * The base URL of the token proxy's API ("…/api/"), or null: then the page offers no "Encode on
 * Replicate" and sends no request for it. config.proxy is null (none: not even a probe), a URL (a hosted
 * proxy: its routes are <proxy>/api/…) or "same-origin": the site's own api/ (`serve`, or a host that
 * runs the proxy's route beside the page), used only if a GET of api/ is answered by the proxy itself
 * (200, {"source": "proxy", "proxy": "sam2enc"}): an answer that reaches no upstream and no token.
 */
export async function proxyApi(cfg) {
  if (!cfg.proxy) return null;
  if (cfg.proxy !== "same-origin") return new URL("api/", `${cfg.proxy.replace(/\/+$/, "")}/`).href;
  const answer = await fetch(siteUrl("api/")).catch(() => null); // 200 from a proxy: no console error
  const body = answer?.ok ? await answer.json().catch(() => null) : null;
  return body?.source === "proxy" && body?.proxy === "sam2enc" ? siteUrl("api/") : null;
}

/** One line when the decoder runs on a single WASM thread for want of cross-origin isolation, else "". */
export function threadsNote(ready) {
  if (ready.backend !== "wasm" || ready.isolated || ready.threads > 1) return "";
  return "Single-threaded WASM: this host sends no cross-origin isolation headers (COOP/COEP), so the decoder uses one thread.";
}
