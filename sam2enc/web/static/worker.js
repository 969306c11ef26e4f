// The decoder, off the main thread: bundle (float16) → float32 tensors once, then one run per prompt.
// The backend is chosen before onnxruntime-web loads: the WASM-only build (14 MB of wasm) unless
// WebGPU will be used, which needs the full build (28 MB). Most first loads are the smaller one.
const preference = new URL(self.location.href).searchParams.get("backend") || "auto";
let ort = null, gpu = null, order = null;
const boot = (async () => {
  gpu = preference === "wasm" ? { use: false, why: "asked for WASM" } : await probeGpu();
  order = preference === "webgpu" ? ["webgpu"] : preference === "auto" && gpu.use ? ["webgpu", "wasm"] : ["wasm"];
  ort = await import(order.includes("webgpu") ? "/vendor/ort/ort.all.min.mjs" : "/vendor/ort/ort.wasm.min.mjs");
  ort.env.wasm.wasmPaths = "/vendor/ort/";
  // WASM threads need cross-origin isolation, which the proxy's COOP/COEP headers give the page.
  ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
})();

const LOW_RES = 256;
let session = null;
let backend = null;
let features = null;
let size = null;

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
  if (!("gpu" in navigator)) return { use: false, why: "no WebGPU in this browser" };
  const adapter = await navigator.gpu.requestAdapter().catch(() => null);
  if (!adapter) return { use: false, why: "no WebGPU adapter" };
  if (adapter.info?.isFallbackAdapter ?? adapter.isFallbackAdapter) {
    return { use: false, why: `WebGPU adapter is a software fallback (${adapter.info?.vendor || "unknown"})` };
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

function upsample(logits, offset, width, height) {
  // bilinear, align_corners=False (as torch.nn.functional.interpolate), then threshold the logits at 0
  const columns = (outSize) => {
    const scale = LOW_RES / outSize;
    const lo = new Int32Array(outSize), hi = new Int32Array(outSize), frac = new Float32Array(outSize);
    for (let i = 0; i < outSize; i++) {
      const src = Math.max((i + 0.5) * scale - 0.5, 0);
      lo[i] = Math.min(Math.floor(src), LOW_RES - 1);
      hi[i] = Math.min(lo[i] + 1, LOW_RES - 1);
      frac[i] = src - lo[i];
    }
    return { lo, hi, frac };
  };
  const xs = columns(width), ys = columns(height);
  const mask = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const r0 = offset + ys.lo[y] * LOW_RES, r1 = offset + ys.hi[y] * LOW_RES, fy = ys.frac[y];
    for (let x = 0; x < width; x++) {
      const fx = xs.frac[x], x0 = xs.lo[x], x1 = xs.hi[x];
      const top = logits[r0 + x0] * (1 - fx) + logits[r0 + x1] * fx;
      const bottom = logits[r1 + x0] * (1 - fx) + logits[r1 + x1] * fx;
      mask[y * width + x] = top * (1 - fy) + bottom * fy > 0 ? 1 : 0;
    }
  }
  return mask;
}

async function decode({ points, box }) {
  const [width, height] = size;
  const sx = 1024 / width, sy = 1024 / height; // SAM2 squashes to 1024×1024: no aspect ratio kept
  const prompts = [];
  if (box) prompts.push([box[0], box[1], 2], [box[2], box[3], 3]); // box corners before the clicks
  prompts.push(...points); // the graph appends SAM2's padding point itself
  const coords = new Float32Array(prompts.length * 2), labels = new Float32Array(prompts.length);
  prompts.forEach(([x, y, label], i) => { coords[2 * i] = x * sx; coords[2 * i + 1] = y * sy; labels[i] = label; });
  const feeds = {
    ...features,
    point_coords: new ort.Tensor("float32", coords, [1, prompts.length, 2]),
    point_labels: new ort.Tensor("float32", labels, [1, prompts.length]),
    mask_input: new ort.Tensor("float32", new Float32Array(LOW_RES * LOW_RES), [1, 1, LOW_RES, LOW_RES]),
    has_mask_input: new ort.Tensor("float32", new Float32Array([0]), [1]),
  };
  const start = performance.now();
  const out = await session.run(feeds);
  const decoderMs = performance.now() - start;
  const scores = out.iou_predictions.data;
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i] > scores[best]) best = i;
  const mask = upsample(out.masks.data, best * LOW_RES * LOW_RES, width, height);
  return { mask, best, score: scores[best], decoderMs, totalMs: performance.now() - start };
}

// Registered at once, so that no message is lost while onnxruntime-web is still loading.
self.onmessage = async ({ data }) => {
  try {
    await boot;
    if (data.type === "bundle") {
      if (!session) await createSession();
      const t = data.manifest.tensors;
      features = Object.fromEntries(Object.keys(t).map((name) => [name, tensorFromBundle(data.payload, t[name])]));
      size = [data.manifest.originalWidth, data.manifest.originalHeight];
      self.postMessage({ type: "ready", backend, why: gpu.why, threads: ort.env.wasm.numThreads });
    } else if (data.type === "decode") {
      const result = await decode(data);
      self.postMessage({ type: "mask", backend, points: data.points, box: data.box, ...result }, [result.mask.buffer]);
    }
  } catch (err) {
    self.postMessage({ type: "error", message: `Decoder: ${err.message || err}` });
  }
};
