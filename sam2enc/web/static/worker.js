// The decoder, off the main thread: bundle (float16) → float32 tensors once, then one run per prompt.
// The backend is chosen before onnxruntime-web loads: the WASM-only build (14 MB of wasm) unless
// WebGPU will be used, which needs the full build (28 MB). Most first loads are the smaller one.
//
// Every message that concerns a bundle carries its generation (`gen`); a decode for a bundle that is no
// longer the worker's current one is answered "stale" and never run on the wrong features.
const query = new URL(self.location.href).searchParams;
const preference = query.get("backend") || "auto";
const DELAY_MS = Number(query.get("delay") || 0); // tests only: hold each decode to make races observable
let ort = null, gpu = null, order = null;
const boot = (async () => {
  gpu = preference === "wasm" ? { use: false, why: "WASM was asked for" } : await probeGpu();
  order = preference === "webgpu" ? ["webgpu"] : preference === "auto" && gpu.use ? ["webgpu", "wasm"] : ["wasm"];
  ort = await import(order.includes("webgpu") ? "/vendor/ort/ort.all.min.mjs" : "/vendor/ort/ort.wasm.min.mjs");
  ort.env.wasm.wasmPaths = "/vendor/ort/";
  // WASM threads need cross-origin isolation, which the proxy's COOP/COEP headers give the page.
  ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
})();

const LOW_RES = 256;
let session = null;
let backend = null;
let current = { gen: -1, features: null, size: null };

// float16 → float32 by table: exact for every value, and independent of Float16Array support.
const HALF = new Float32Array(65536);
for (let h = 0; h < 65536; h++) {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  HALF[h] = exp === 0 ? sign * 2 ** -14 * (frac / 1024)
    : exp === 31 ? (frac ? NaN : sign * Infinity)
    : sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

function tensorFromBundle(payload, spec) {
  const count = spec.shape.reduce((a, b) => a * b, 1);
  const half = new Uint16Array(payload, spec.offset, count); // little-endian, as the format says
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = HALF[half[i]];
  return new ort.Tensor("float32", out, spec.shape);
}

// WebGPU runs the fp32 decoder exactly even without shader-f16; fp16 graphs do not (measured), so the
// app converts the bundle to float32 once and uses the same decoder.onnx on both backends.
// "auto" takes WebGPU only on a hardware adapter: on a software one (SwiftShader) a click took 29–53 s
// and the mask drifted to IoU 0.995 from the Python decoder's, against 0.1–0.4 s and IoU 1.0 on WASM.
async function probeGpu() {
  if (!("gpu" in navigator)) return { use: false, why: "this browser has no WebGPU" };
  const adapter = await navigator.gpu.requestAdapter().catch(() => null);
  if (!adapter) return { use: false, why: "no WebGPU adapter" };
  if (adapter.info?.isFallbackAdapter ?? adapter.isFallbackAdapter) {
    return { use: false, why: `the WebGPU adapter is a software fallback (${adapter.info?.vendor || "unknown"})` };
  }
  return { use: true, why: "hardware WebGPU adapter" };
}

async function createSession() {
  let failure = null;
  for (const ep of order) {
    try {
      session = await ort.InferenceSession.create("/models/decoder.onnx", { executionProviders: [ep] });
      backend = ep;
      return;
    } catch (err) {
      failure = err;
    }
  }
  throw failure;
}

// Bilinear, align_corners=False (as torch.nn.functional.interpolate), then threshold the logits at 0 —
// separably: the 256 source rows are interpolated to the output width once, then blended per output row.
// Same arithmetic as the Python decoder (float32 source positions, float64 sums), so a full-size mask
// equals `python -m sam2enc decode`; for the screen it runs at display size only.
function axis(outSize) {
  const scale = Math.fround(LOW_RES / outSize);
  const lo = new Int32Array(outSize), hi = new Int32Array(outSize), frac = new Float32Array(outSize);
  for (let i = 0; i < outSize; i++) {
    const src = Math.max(Math.fround(Math.fround(scale * Math.fround(i + 0.5)) - 0.5), 0);
    lo[i] = Math.min(Math.floor(src), LOW_RES - 1);
    hi[i] = Math.min(lo[i] + 1, LOW_RES - 1);
    frac[i] = Math.min(Math.max(src - lo[i], 0), 1);
  }
  return { lo, hi, frac };
}

function upsample(logits, offset, width, height, out, on) {
  const xs = axis(width), ys = axis(height);
  const rows = new Float64Array(LOW_RES * width);
  for (let r = 0; r < LOW_RES; r++) {
    const base = offset + r * LOW_RES, dst = r * width;
    for (let x = 0; x < width; x++) {
      const f = xs.frac[x];
      rows[dst + x] = logits[base + xs.lo[x]] * (1 - f) + logits[base + xs.hi[x]] * f;
    }
  }
  for (let y = 0; y < height; y++) {
    const r0 = ys.lo[y] * width, r1 = ys.hi[y] * width, fy = ys.frac[y], dst = y * width;
    for (let x = 0; x < width; x++) {
      if (rows[r0 + x] * (1 - fy) + rows[r1 + x] * fy > 0) out[dst + x] = on;
    }
  }
  return out;
}

async function run({ points, box }) {
  const [width, height] = current.size;
  const sx = 1024 / width, sy = 1024 / height; // SAM2 squashes to 1024×1024: no aspect ratio kept
  const prompts = [];
  if (box) prompts.push([box[0], box[1], 2], [box[2], box[3], 3]); // box corners before the clicks
  prompts.push(...points); // the graph appends SAM2's padding point itself
  const coords = new Float32Array(prompts.length * 2), labels = new Float32Array(prompts.length);
  prompts.forEach(([x, y, label], i) => { coords[2 * i] = x * sx; coords[2 * i + 1] = y * sy; labels[i] = label; });
  const feeds = {
    ...current.features,
    point_coords: new ort.Tensor("float32", coords, [1, prompts.length, 2]),
    point_labels: new ort.Tensor("float32", labels, [1, prompts.length]),
    mask_input: new ort.Tensor("float32", new Float32Array(LOW_RES * LOW_RES), [1, 1, LOW_RES, LOW_RES]),
    has_mask_input: new ort.Tensor("float32", new Float32Array([0]), [1]),
  };
  const start = performance.now();
  const out = await session.run(feeds);
  const decoderMs = performance.now() - start;
  if (DELAY_MS) await new Promise((r) => setTimeout(r, DELAY_MS));
  const scores = out.iou_predictions.data;
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i] > scores[best]) best = i;
  return { logits: out.masks.data, offset: best * LOW_RES * LOW_RES, best, score: scores[best], decoderMs };
}

// --- PNG (8-bit grayscale, what `python -m sam2enc decode` writes) ---------------------------------
const CRC = new Uint32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function chunk(type, data) {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  let c = 0xffffffff;
  for (let i = 4; i < 8 + data.length; i++) c = CRC[(c ^ out[i]) & 0xff] ^ (c >>> 8);
  view.setUint32(8 + data.length, (c ^ 0xffffffff) >>> 0);
  return out;
}
async function grayPng(pixels, width, height) {
  const raw = new Uint8Array((width + 1) * height); // filter byte 0 before each row
  for (let y = 0; y < height; y++) raw.set(pixels.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  const zlib = new Uint8Array(await new Response(new Blob([raw]).stream().pipeThrough(new CompressionStream("deflate"))).arrayBuffer());
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header.set([8, 0, 0, 0, 0], 8); // bit depth 8, grayscale, deflate, no filter, no interlace
  const signature = Uint8Array.of(137, 80, 78, 71, 13, 10, 26, 10);
  return new Blob([signature, chunk("IHDR", header), chunk("IDAT", zlib), chunk("IEND", new Uint8Array(0))], { type: "image/png" });
}

// Registered at once, so that no message is lost while onnxruntime-web is still loading.
let queue = Promise.resolve();
self.onmessage = ({ data }) => { queue = queue.then(() => handle(data)); };

async function handle(data) {
  const tag = { gen: data.gen, promptGen: data.promptGen, id: data.id, kind: data.kind };
  try {
    await boot;
    if (data.type === "retire") {
      current = { gen: data.gen, features: null, size: null };
    } else if (data.type === "bundle") {
      if (data.gen < current.gen) return;
      current = { gen: data.gen, features: null, size: null };
      if (!session) await createSession();
      const t = data.manifest.tensors;
      const features = Object.fromEntries(Object.keys(t).map((name) => [name, tensorFromBundle(data.payload, t[name])]));
      if (current.gen !== data.gen) return;
      current = { gen: data.gen, features, size: [data.manifest.originalWidth, data.manifest.originalHeight] };
      const start = performance.now(); // warm-up: the first run of a session is several times slower
      await run({ points: [[current.size[0] / 2, current.size[1] / 2, 1]], box: null });
      self.postMessage({ type: "ready", ...tag, backend, why: gpu.why, threads: ort.env.wasm.numThreads, warmupMs: performance.now() - start });
    } else if (data.gen !== current.gen || !current.features) {
      self.postMessage({ type: "stale", ...tag });
    } else if (data.type === "decode") {
      const start = performance.now();
      const result = await run(data);
      const [width, height] = data.display;
      const rgba = upsample(result.logits, result.offset, width, height, new Uint32Array(width * height), 0xff000000);
      self.postMessage({ type: "mask", ...tag, points: data.points, box: data.box, backend, width, height, rgba,
        best: result.best, score: result.score, decoderMs: result.decoderMs, totalMs: performance.now() - start }, [rgba.buffer]);
    } else if (data.type === "export") {
      const result = await run(data);
      const [width, height] = current.size;
      const mask = upsample(result.logits, result.offset, width, height, new Uint8Array(width * height), 255);
      const png = data.png ? await grayPng(mask, width, height) : null;
      self.postMessage({ type: "export", ...tag, points: data.points, box: data.box, width, height, mask, png }, [mask.buffer]);
    }
  } catch (err) {
    self.postMessage({ type: "error", ...tag, message: `Decoder: ${err.message || err}` });
  }
}
