// sam2enc in a Vite app: a bundle and its photo, SAM2's decoder in the browser, a mask per prompt.
// Files (in public/, or anywhere with ?decoder=URL&bundle=FOLDER&photo=URL): models/decoder.onnx with its
// model.json, bundle/manifest.json + bundle/embedding.bin, and the photo the bundle was encoded from.
import { loadDecoder, maskToPng, openBundle, segment } from "sam2enc";
import { promptsFromPointer } from "./prompts.js";

const params = new URLSearchParams(location.search);
const at = (name, fallback) => new URL(params.get(name) ?? fallback, location.href);
const folder = (url) => new URL(url.href.endsWith("/") ? url.href : `${url.href}/`);
const status = document.querySelector("#status");
const canvas = document.querySelector("#photo");
const say = (text, state) => Object.assign(status, { textContent: text }).setAttribute("data-state", state);

async function fetched(url, as) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url} could not be fetched (HTTP ${response.status})`);
  return response[as]();
}

async function main() {
  const bundleDir = folder(at("bundle", "bundle/"));
  const [decoder, bundle, photo] = await Promise.all([
    loadDecoder(at("decoder", "models/decoder.onnx")), // WASM; { executionProviders: ["webgpu", "wasm"] } for WebGPU
    Promise.all([fetched(new URL("manifest.json", bundleDir), "text"), fetched(new URL("embedding.bin", bundleDir), "arrayBuffer")])
      .then(([manifest, embedding]) => openBundle(manifest, embedding)),
    params.get("photo") ? fetched(at("photo"), "blob").then((blob) => createImageBitmap(blob, { imageOrientation: "from-image" })) : null,
  ]);
  canvas.width = bundle.width;
  canvas.height = bundle.height;
  const context = canvas.getContext("2d");
  const prompts = { points: [], box: null };
  let result = null, seq = 0, queue = Promise.resolve();

  function draw() {
    context.clearRect(0, 0, canvas.width, canvas.height);
    if (photo) context.drawImage(photo, 0, 0);
    if (result) {
      const overlay = context.getImageData(0, 0, canvas.width, canvas.height);
      for (let i = 0; i < result.mask.length; i++) {
        if (result.mask[i]) overlay.data.set([30, 144, 255, 255], 4 * i);
      }
      context.putImageData(overlay, 0, 0);
    }
    for (const [x, y, label] of prompts.points) {
      context.fillStyle = label ? "lime" : "red";
      context.fillRect(x - 4, y - 4, 8, 8);
    }
    if (prompts.box) context.strokeRect(prompts.box[0], prompts.box[1], prompts.box[2] - prompts.box[0], prompts.box[3] - prompts.box[1]);
  }

  // Decodes run one at a time, in order; each answer is drawn and offered as a PNG.
  const update = () => (queue = queue.then(async () => {
    result = prompts.points.length || prompts.box ? await segment(decoder, bundle, prompts) : null;
    seq += 1;
    draw();
    const link = document.querySelector("#download");
    URL.revokeObjectURL(link.href);
    link.href = result ? URL.createObjectURL(new Blob([await maskToPng(result.mask, result.width, result.height)], { type: "image/png" })) : "";
  }).catch((err) => say(`Decoder: ${err.message}`, "error")));

  promptsFromPointer(canvas, prompts, update);
  document.querySelector("#clear").onclick = () => { prompts.points = []; prompts.box = null; update(); };

  // For tests and the console: the prompts on screen, how many answers were drawn, the last mask, and
  // any prompt decoded directly ({points: [[x, y, 1|0]], box: [x0, y0, x1, y1] | null}).
  window.sam2encExample = {
    backend: decoder.backend,
    get prompts() { return structuredClone(prompts); },
    get seq() { return seq; },
    mask: () => result && { width: result.width, height: result.height, mask: result.mask },
    segment: (prompt) => segment(decoder, bundle, prompt),
  };
  draw();
  say(`Ready (${decoder.backend}): click the photo.`, "ready");
}

main().catch((err) => say(`Could not start: ${err.message}`, "error"));
