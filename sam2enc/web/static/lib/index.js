// sam2enc in the browser and in Node ≥ 20: open a bundle, load SAM2's decoder, turn clicks into masks.
// DOM-free; onnxruntime-web (a peer dependency) is imported on first use unless the caller passes its
// namespace as `ort`: the WASM-only build, or the JSPI WebGPU build when WebGPU is asked for. This is the
// package's "." for browsers and bundlers; Node's "." is node.js (the same, plus file paths). COCO export
// is "sam2enc/coco"; everything else in this folder is internal.
export { checkPhoto, openBundle } from "./bundle.js";
export { loadDecoder, segment } from "./decoder.js";
export { upsampleMask, maskToPng, cutout } from "./masks.js";
