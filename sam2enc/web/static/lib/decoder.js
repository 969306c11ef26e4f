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

/**
 * Load decoder.onnx (or decoder_hires.onnx) into an onnxruntime-web session.
 * @param {string|URL|ArrayBuffer|Uint8Array} source the graph's URL (model.json is read beside it) or its bytes
 * @param {{modelInfo?: object, executionProviders?: string[], ort?: object}} [options]
 */
export async function loadDecoder(source, { modelInfo, executionProviders = ["wasm"], ort } = {}) {
  ort = ort ?? (await import("onnxruntime-web"));
  let bytes;
  if (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) {
    if (!modelInfo) throw new Error("loadDecoder needs options.modelInfo (the parsed model.json) when given the graph's bytes");
    bytes = source instanceof ArrayBuffer ? new Uint8Array(source) : new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  } else if (typeof source === "string" || source instanceof URL) {
    const url = await resolve(source);
    [bytes, modelInfo] = await Promise.all([
      readBytes(url),
      modelInfo ?? readBytes(new URL("model.json", url)).then((b) => parseModelInfo(new TextDecoder().decode(b), url)),
    ]);
  } else {
    throw new TypeError("loadDecoder takes a URL or the bytes of decoder.onnx");
  }
  if (typeof modelInfo === "string") modelInfo = parseModelInfo(modelInfo, "modelInfo");
  if (!modelInfo || typeof modelInfo.model !== "string") {
    throw new Error("modelInfo is not a model.json written by sam2enc export (it has no \"model\")");
  }
  const session = await ort.InferenceSession.create(bytes, { executionProviders });
  return {
    ort,
    session,
    executionProviders: [...executionProviders],
    modelInfo,
    model: { name: modelInfo.model, checkpointSha256: modelInfo.checkpointSha256 ?? null },
    _tensors: new WeakMap(), // bundle → its features as ort.Tensor, made once
  };
}

function parseModelInfo(text, where) {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${where}: model.json is not valid JSON (${err.message})`);
  }
}

async function resolve(source) {
  if (source instanceof URL) return source;
  try {
    return new URL(source, globalThis.location?.href); // absolute, or relative to the page
  } catch {
    const { pathToFileURL } = await import(/* webpackIgnore: true */ /* @vite-ignore */ "node:url"); // Node: a file path, relative to the cwd
    return pathToFileURL(source);
  }
}

// fetch() in browsers and for http(s) in Node; the file system for file: URLs and paths in Node.
async function readBytes(url) {
  if (url.protocol !== "file:") {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url} could not be fetched (HTTP ${response.status})`);
    return new Uint8Array(await response.arrayBuffer());
  }
  const { readFile } = await import(/* webpackIgnore: true */ /* @vite-ignore */ "node:fs/promises");
  return new Uint8Array(await readFile(url));
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

function featureTensors(decoder, bundle) {
  let tensors = decoder._tensors.get(bundle);
  if (!tensors) {
    tensors = {};
    for (const [name, { data, dims }] of Object.entries(bundle.features)) tensors[name] = new decoder.ort.Tensor("float32", data, dims);
    decoder._tensors.set(bundle, tensors);
  }
  return tensors;
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
    ...featureTensors(decoder, bundle),
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
