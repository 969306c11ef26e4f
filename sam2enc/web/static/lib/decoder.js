// loadDecoder and segment: SAM2's decoder.onnx in onnxruntime-web, prompts in pixels of the upright photo.
//
// The same arithmetic as sam2enc/decoder.py (SAM2ImagePredictor.predict(multimask_output=True)): clicks
// map to model space as x·1024/width and y·1024/height (SAM2 squashes the photo to 1024×1024, no aspect
// ratio kept); a box becomes two corner points labelled 2 and 3 placed BEFORE the clicks; the graph
// appends SAM2's padding point itself (sending one more changes the masks); the logits are upsampled to
// the photo and thresholded at 0. (The order of the prompt tokens does not change the result — SAM2's
// two-way transformer has no token positions — but SAM2's order is kept.)
import { INPUT_SIZE, LOW_RES } from "./layout.js";
import { upsampleMask } from "./masks.js";

const LOGIT_CLAMP = 32; // Python clamps the 256×256 logits it hands back to ±32, for mask_input

// What a decoder keeps out of sight: its features as tensors, per bundle (the CPU ones made once per
// bundle; the GPU ones uploaded once, for the bundle in use), and whether it was disposed.
const STATE = new WeakMap();

const epName = (ep) => (typeof ep === "string" ? ep : ep?.name);

/** Why this browser cannot run onnxruntime-web's WebGPU (JSPI) build, or null when it can. */
export function webgpuMissing() {
  if (!globalThis.navigator?.gpu) return "this browser has no WebGPU";
  if (typeof globalThis.WebAssembly?.Suspending !== "function") {
    return "this browser has no JS Promise Integration (WebAssembly.Suspending; Chrome 137 or later), which onnxruntime-web's WebGPU build needs";
  }
  return null;
}

/**
 * onnxruntime-web for these providers: the WASM-only build (14 MB of wasm) unless WebGPU is asked for
 * and the browser can run the JSPI WebGPU build (17 MB): never the 28 MB JSEP build that a plain
 * `import("onnxruntime-web")` brings into a bundle. Returns the namespace and the providers it can run.
 */
async function runtime(executionProviders) {
  const gpu = executionProviders.some((ep) => epName(ep) === "webgpu");
  const missing = gpu ? webgpuMissing() : null;
  if (gpu && !missing) return { ort: await import("onnxruntime-web/jspi"), providers: executionProviders, skipped: null };
  const providers = executionProviders.filter((ep) => epName(ep) !== "webgpu");
  return { ort: await import("onnxruntime-web/wasm"), providers: providers.length ? providers : ["wasm"], skipped: missing };
}

/**
 * Load decoder.onnx (or decoder_hires.onnx) into an onnxruntime-web session.
 * @param {string|URL|ArrayBuffer|Uint8Array} source the graph's URL (model.json is read beside it) or its bytes
 * @param {{modelInfo?: object, executionProviders?: (string|{name: string})[], ort?: object}} [options]
 */
export async function loadDecoder(source, { modelInfo, executionProviders = ["wasm"], ort } = {}) {
  let bytes;
  if (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) {
    if (!modelInfo) throw new Error("loadDecoder needs options.modelInfo (the parsed model.json) when given the graph's bytes");
    bytes = source instanceof ArrayBuffer ? new Uint8Array(source) : new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  } else if (typeof source === "string" || source instanceof URL) {
    const url = resolve(source);
    [bytes, modelInfo] = await Promise.all([
      fetchBytes(url),
      modelInfo ?? fetchBytes(new URL("model.json", url)).then((b) => parseModelInfo(new TextDecoder().decode(b), url)),
    ]);
  } else {
    throw new TypeError("loadDecoder takes a URL or the bytes of decoder.onnx");
  }
  if (typeof modelInfo === "string") modelInfo = parseModelInfo(modelInfo, "modelInfo");
  if (!modelInfo || typeof modelInfo.model !== "string") {
    throw new Error("modelInfo is not a model.json written by sam2enc export (it has no \"model\")");
  }
  if (!Array.isArray(executionProviders) || executionProviders.length === 0) {
    throw new TypeError("executionProviders is a list such as [\"webgpu\", \"wasm\"]");
  }
  let providers = executionProviders, skipped = null;
  if (!ort) ({ ort, providers, skipped } = await runtime(executionProviders));
  const { session, backend, failures } = await createSession(ort, bytes, providers);
  const first = epName(executionProviders[0]);
  const decoder = {
    ort,
    session,
    executionProviders: [...executionProviders],
    backend,
    fallback: backend === first ? null : [skipped, ...failures].filter(Boolean).join("; ") || `${first} is not available`,
    modelInfo,
    model: { name: modelInfo.model, checkpointSha256: modelInfo.checkpointSha256 ?? null },
    dispose: () => dispose(decoder),
  };
  STATE.set(decoder, { cpu: new WeakMap(), gpu: null, disposed: null });
  return decoder;
}

/**
 * One session on the first provider that can create it. onnxruntime's own provider list falls back op
 * by op, not when a session fails to create (no adapter, a device lost at start): here a failure moves
 * on to the next provider, and the reasons are kept for `decoder.fallback`.
 */
async function createSession(ort, bytes, providers) {
  const failures = [];
  for (const ep of providers) {
    try {
      const session = await ort.InferenceSession.create(bytes, { executionProviders: [ep] });
      return { session, backend: epName(ep), failures };
    } catch (err) {
      failures.push(`${epName(ep)} could not start (${String(err?.message || err)})`);
    }
  }
  throw new Error(`the decoder could not be loaded: ${failures.join("; ")}`);
}

/** Free the decoder's session and every GPU buffer it holds; later calls on it refuse in one sentence. */
async function dispose(decoder) {
  const state = STATE.get(decoder);
  if (!state || state.disposed) return;
  state.disposed = true;
  releaseGpu(state);
  state.cpu = new WeakMap();
  await decoder.session.release();
}

function releaseGpu(state) {
  for (const tensor of Object.values(state.gpu?.tensors ?? {})) tensor.dispose();
  for (const buffer of state.gpu?.buffers ?? []) buffer.destroy();
  state.gpu = null;
}

function parseModelInfo(text, where) {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${where}: model.json is not valid JSON (${err.message})`);
  }
}

function resolve(source) {
  if (source instanceof URL) return source;
  try {
    return new URL(source, globalThis.location?.href); // absolute, or relative to the page
  } catch {
    throw new Error(`${source} is not a URL (a file path works in Node, whose "sam2enc" entry reads files)`);
  }
}

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url} could not be fetched (HTTP ${response.status})`);
  return new Uint8Array(await response.arrayBuffer());
}

/** The identity a model check compares: checkpointSha256 when both sides have one, else the name. */
export function sameModel(bundleModel, decoderModel) {
  const a = bundleModel ?? {}, b = decoderModel ?? {};
  if (a.checkpointSha256 && b.checkpointSha256) return a.checkpointSha256 === b.checkpointSha256;
  if (a.name && b.name) return a.name === b.name;
  return true; // a bundle that names no model cannot be checked
}

function describe(model) {
  const sha = model.checkpointSha256;
  return `${model.name ?? "an unnamed model"} (${sha ? `checkpoint sha256 ${sha.slice(0, 12)}` : "no checkpoint recorded"})`;
}

/** The one sentence both the JS and Python decoders say when a bundle belongs to another model. */
export function modelMismatch(bundleModel, decoderModel) {
  return `this bundle was encoded by ${describe(bundleModel)} but the decoder is ${describe(decoderModel)}: decode it with the model that encoded it`;
}

/** Validate prompts in image pixels and map them to model space, as sam2enc.decoder.prompt_arrays. */
export function promptArrays(width, height, points = [], box = null) {
  const coords = [], labels = [];
  if (box != null) {
    const [x0, y0, x1, y1] = box.map(Number);
    if (box.length !== 4 || !(x0 < x1 && y0 < y1)) throw new Error(`a box needs x0 < x1 and y0 < y1, got ${JSON.stringify(box)}`);
    coords.push([x0, y0], [x1, y1]);
    labels.push(2, 3);
  }
  for (const point of points) {
    if (!Array.isArray(point) || point.length !== 3) throw new Error(`a click is [x, y, label], got ${JSON.stringify(point)}`);
    const [x, y, label] = point;
    if (label !== 0 && label !== 1) throw new Error(`a click's label is 1 (foreground) or 0 (background), got ${label}`);
    coords.push([Number(x), Number(y)]);
    labels.push(label);
  }
  if (coords.length === 0) throw new Error("give at least one click or a box");
  for (const [x, y] of coords) {
    if (!(x >= 0 && x <= width && y >= 0 && y <= height)) throw new Error(`(${x}, ${y}) lies outside the ${width}×${height} image`);
  }
  const sx = Math.fround(INPUT_SIZE / width), sy = Math.fround(INPUT_SIZE / height);
  const pointCoords = new Float32Array(coords.length * 2);
  coords.forEach(([x, y], i) => {
    pointCoords[2 * i] = Math.fround(x) * sx;
    pointCoords[2 * i + 1] = Math.fround(y) * sy;
  });
  return { pointCoords, pointLabels: Float32Array.from(labels), count: coords.length };
}

/**
 * The bundle's features as the decoder's inputs, made once per bundle: CPU tensors over the bundle's
 * float32 arrays; on WebGPU, GPU buffers uploaded once (for the bundle in use; another bundle replaces
 * them) so that a click uploads only its prompts, not 17 MB of features. Keyed by `bundle.features`, which
 * resized views of a bundle share.
 */
async function featureTensors(decoder, bundle) {
  const state = STATE.get(decoder);
  if (!state) throw new TypeError("segment needs a decoder from loadDecoder");
  if (state.disposed) throw new Error("this decoder was disposed: load it again with loadDecoder");
  const key = bundle.features;
  if (decoder.backend === "webgpu") {
    if (state.gpu?.key !== key) {
      releaseGpu(state);
      state.gpu = await upload(decoder.ort, key);
    }
    return state.gpu.tensors;
  }
  let tensors = state.cpu.get(key);
  if (!tensors) {
    tensors = {};
    for (const [name, { data, dims }] of Object.entries(key)) tensors[name] = new decoder.ort.Tensor("float32", data, dims);
    state.cpu.set(key, tensors);
  }
  return tensors;
}

async function upload(ort, features) {
  const device = await ort.env.webgpu.device; // onnxruntime's own device: its sessions read these buffers
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const gpu = { key: features, tensors: {}, buffers: [] };
  for (const [name, { data, dims }] of Object.entries(features)) {
    const buffer = device.createBuffer({ size: data.byteLength, usage });
    device.queue.writeBuffer(buffer, 0, data);
    gpu.buffers.push(buffer);
    gpu.tensors[name] = ort.Tensor.fromGpuBuffer(buffer, { dataType: "float32", dims });
  }
  return gpu;
}

/**
 * Decode one prompt: the best of SAM2's three masks at the photo's size, plus all scores and logits.
 * @param {object} decoder from loadDecoder
 * @param {object} bundle from openBundle
 * @param {{points?: number[][], box?: number[]|null, maskInput?: Float32Array|null}} prompt
 */
export async function segment(decoder, bundle, { points = [], box = null, maskInput = null } = {}) {
  if (!bundle || !bundle.features) throw new TypeError("segment needs a bundle from openBundle");
  if (!sameModel(bundle.model, decoder.model)) throw new Error(modelMismatch(bundle.model, decoder.model));
  const { width, height } = bundle;
  const { pointCoords, pointLabels, count } = promptArrays(width, height, points, box);
  if (maskInput != null && maskInput.length !== LOW_RES * LOW_RES) {
    throw new Error(`maskInput holds ${LOW_RES}×${LOW_RES} logits (one of lowResLogits), got ${maskInput.length} values`);
  }
  const { Tensor } = decoder.ort;
  const feeds = {
    ...(await featureTensors(decoder, bundle)),
    point_coords: new Tensor("float32", pointCoords, [1, count, 2]),
    point_labels: new Tensor("float32", pointLabels, [1, count]),
    mask_input: new Tensor("float32", maskInput ? Float32Array.from(maskInput) : new Float32Array(LOW_RES * LOW_RES), [1, 1, LOW_RES, LOW_RES]),
    has_mask_input: new Tensor("float32", Float32Array.of(maskInput ? 1 : 0), [1]),
  };
  const out = await decoder.session.run(feeds);
  const logits = out.masks.data, size = out.masks.dims[3];
  const scores = Float32Array.from(out.iou_predictions.data);
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i] > scores[best]) best = i;
  const plane = size * size;
  const mask = upsampleMask(logits, { offset: best * plane, size, width, height });
  const lowResLogits = Array.from(scores, (_, i) => {
    const copy = logits.slice(i * plane, (i + 1) * plane);
    if (size === LOW_RES) for (let j = 0; j < plane; j++) copy[j] = Math.min(Math.max(copy[j], -LOGIT_CLAMP), LOGIT_CLAMP);
    return copy;
  });
  for (const tensor of Object.values(out)) tensor.dispose?.();
  return { mask, width, height, scores, best, lowResLogits };
}
