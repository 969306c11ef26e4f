// The decoder off the main thread: a thin message loop over the sam2enc module (lib/). The page opens
// and verifies each bundle with the module's openBundle and hands its float32 features over; every
// mask, on screen and exported, comes from the module's `segment`.
//
// Every message that concerns a bundle carries its generation (`gen`): a decode for a bundle that is no
// longer current is answered "stale" and never run on the wrong features. Messages run one at a time,
// except "prefetch" (dataset mode): { key, manifest, payload, photo, photoFile, model } opens and checks a
// bundle beside the queue and answers "prefetched" ({ key, error? }); a later "bundle" or "export" that
// names the same `key` uses it (or opens it then, if it has been dropped from the LRU).
import { loadDecoder, maskToPng, segment } from "./lib/index.js";
import { webgpuMissing } from "./lib/decoder.js";
import { loadConfig, modelUrl, ortEntry, webgpuShipped } from "./app/site.js";
import { checkedBundle } from "./app/files.js";

const query = new URL(self.location.href).searchParams;
const preference = query.get("backend") || "auto";
const DELAY_MS = Number(query.get("delay") || 0); // tests only: hold each decode to make races observable

// The backend is chosen before onnxruntime-web loads: the WASM-only build (14 MB of wasm) unless WebGPU
// will be used, which needs the JSPI build (17 MB; WebGPU and JS Promise Integration, Chrome 137+).
// "auto" takes WebGPU only on a hardware adapter: on a software one (SwiftShader) a click takes ~50 s.
// A WebGPU session that cannot start falls back to WASM (the module's loadDecoder), and `why` says so.
// Every file comes from the site's own folder (app/site.js), and only a build config.json says shipped.
let ort = null, gpu = null, decoder = null;
const boot = (async () => {
  const config = await loadConfig();
  gpu = await chooseGpu(config);
  const order = gpu.use ? ["webgpu", "wasm"] : ["wasm"];
  const entry = ortEntry(config, order);
  ort = await import(entry.module);
  ort.env.wasm.wasmPaths = entry.wasmPaths;
  // WASM threads need cross-origin isolation (COOP/COEP headers: the proxy's, or a host's _headers).
  ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  decoder = await loadDecoder(modelUrl(config, "decoder.onnx"), { ort, executionProviders: order });
  if (decoder.fallback) gpu = { use: false, why: decoder.fallback };
})();
// Said once, at once, as what it is: the page then never offers what cannot work (and no rejection goes
// unhandled). Each later message that needs the decoder is answered with the same error.
boot.catch((err) => self.postMessage({ type: "failed", message: `The decoder could not be loaded: ${String(err.message || err)}` }));

/** Whether to run on WebGPU, and why (or why not): the page shows `why` beside a WASM decoder. */
async function chooseGpu(config) {
  if (preference === "wasm") return { use: false, why: "WASM was asked for" };
  const missing = webgpuShipped(config) ?? webgpuMissing();
  if (missing) return { use: false, why: missing };
  const adapter = await navigator.gpu.requestAdapter().catch(() => null);
  if (!adapter) return { use: false, why: "this browser offers no WebGPU adapter" };
  const info = adapter.info ?? {};
  if (preference !== "webgpu" && (info.isFallbackAdapter ?? adapter.isFallbackAdapter)) {
    const name = [info.vendor, info.architecture].filter(Boolean).join(" ") || "unknown";
    return { use: false, why: `the WebGPU adapter is a software fallback (${name})` };
  }
  return { use: true, why: preference === "webgpu" ? "WebGPU was asked for" : "hardware WebGPU adapter" };
}

let current = { gen: -1, bundle: null };
let warm = false; // the session has run once: later bundles need no warm-up

// Dataset mode: the next photos' bundles are read, verified (files.js's checkedBundle: sha256, the
// photo, the model) and converted to float32 here ahead of time, keyed by the photo's sha256, so that
// moving to a prefetched photo costs about one decode. At most PREFETCH_LIMIT live (least recently used
// goes first): each is ~26 MB of float32.
const PREFETCH_LIMIT = Number(query.get("prefetch") || 4);
const prefetched = new Map(); // key → Promise<bundle>, oldest use first

function prefetch({ key, manifest, payload, photo, model, photoFile }) {
  if (prefetched.has(key)) return touch(key);
  const opened = (async () => checkedBundle(manifest, await payloadBytes(payload), photo, model, photoFile))();
  opened.catch(() => {}); // asked for later (or never): the rejection is answered then
  prefetched.set(key, opened);
  while (prefetched.size > PREFETCH_LIMIT) prefetched.delete(prefetched.keys().next().value);
  return opened;
}

function touch(key) {
  const opened = prefetched.get(key);
  prefetched.delete(key);
  prefetched.set(key, opened);
  return opened;
}

const payloadBytes = async (payload) => (payload instanceof Blob ? payload.arrayBuffer() : payload);

// On screen the mask is needed at display size only (a 4000×3000 photo is shown at ~1000×750): the
// bundle is decoded as if the photo were that size — prompts scaled by the same factor map to the same
// model-space coordinates, x·1024/width — so `segment` upsamples the logits straight to the display
// (the full-size upsample of a 12 MP photo costs ~0.1–0.2 s a click). Exports use the photo's size.
const views = new WeakMap();
function sizedAs(bundle, [width, height]) {
  if (width === bundle.width && height === bundle.height) return bundle;
  let view = views.get(bundle);
  if (view?.width !== width || view?.height !== height) views.set(bundle, (view = { ...bundle, width, height }));
  return view;
}

function scaled({ points, box }, from, to) {
  if (from === to) return { points, box };
  const x = (v) => Math.min((v * to.width) / from.width, to.width), y = (v) => Math.min((v * to.height) / from.height, to.height);
  return { points: points.map(([px, py, label]) => [x(px), y(py), label]), box: box && [x(box[0]), y(box[1]), x(box[2]), y(box[3])] };
}

async function decode(data, size = null) {
  const bundle = size ? sizedAs(current.bundle, size) : current.bundle;
  const start = performance.now();
  const result = await segment(decoder, bundle, scaled(data, current.bundle, bundle));
  const decoderMs = performance.now() - start;
  if (DELAY_MS) await new Promise((r) => setTimeout(r, DELAY_MS));
  return { result, decoderMs, score: result.scores[result.best] };
}

// Registered at once, so that no message is lost while onnxruntime-web is still loading.
let queue = Promise.resolve();
self.onmessage = ({ data }) => {
  // A prefetch runs beside the queue (its sha256 is off-thread, its conversion a few tens of ms), so a
  // click on the current photo never waits for the next photo's bundle.
  if (data.type === "prefetch") prefetched.has(data.key) ? touch(data.key) : announce(data.key, prefetch(data));
  else queue = queue.then(() => handle(data));
};

/** Tell the page whether a prefetched bundle is usable (`error`: one sentence when it is not). */
function announce(key, opened) {
  opened.then(() => self.postMessage({ type: "prefetched", key }),
    (err) => self.postMessage({ type: "prefetched", key, error: String(err.message || err) }));
}

async function handle(data) {
  const tag = { gen: data.gen, promptGen: data.promptGen, id: data.id, kind: data.kind, objectId: data.objectId };
  try {
    if (data.type === "retire") {
      current = { gen: data.gen, bundle: null };
      return;
    }
    await boot;
    const backend = decoder.backend;
    if (data.type === "bundle") {
      if (data.gen < current.gen) return;
      const bundle = data.key ? await (prefetched.get(data.key) ? touch(data.key) : prefetch(data)) : data.bundle;
      if (data.gen < current.gen) return;
      current = { gen: data.gen, bundle };
      const start = performance.now(); // warm-up: the first run of a session is several times slower
      if (!(data.key && warm)) await decode({ points: [[bundle.width / 2, bundle.height / 2, 1]], box: null });
      warm = true;
      if (current.gen !== data.gen) return;
      self.postMessage({ type: "ready", ...tag, backend, why: gpu.why, threads: ort.env.wasm.numThreads, isolated: self.crossOriginIsolated, warmupMs: performance.now() - start });
    } else if (data.type === "export" && data.key) {
      // Dataset export: a photo that is not on screen, by its prefetched (or now fetched) bundle.
      const bundle = await (prefetched.get(data.key) ? touch(data.key) : prefetch(data));
      await exportMask(data, tag, await segment(decoder, bundle, data));
    } else if (data.gen !== current.gen || !current.bundle) {
      self.postMessage({ type: "stale", ...tag });
    } else if (data.type === "decode") {
      const start = performance.now();
      const { result, decoderMs, score } = await decode(data, data.display);
      const rgba = new Uint32Array(result.mask.length); // opaque black inside the mask
      for (let i = 0; i < rgba.length; i++) if (result.mask[i]) rgba[i] = 0xff000000;
      const [width, height] = data.display;
      self.postMessage({ type: "mask", ...tag, points: data.points, box: data.box, backend, width, height, rgba,
        best: result.best, score, decoderMs, totalMs: performance.now() - start }, [rgba.buffer]);
    } else if (data.type === "export") {
      await exportMask(data, tag, (await decode(data)).result);
    }
  } catch (err) {
    const message = String(err.message || err);
    self.postMessage({ type: "error", ...tag, message: `Decoder: ${message}` });
  }
}

async function exportMask(data, tag, result) {
  const png = data.png ? await maskToPng(result.mask, result.width, result.height) : null;
  const transfer = png ? [result.mask.buffer, png.buffer] : [result.mask.buffer];
  self.postMessage({ type: "export", ...tag, points: data.points, box: data.box, width: result.width,
    height: result.height, mask: result.mask, png }, transfer);
}
