// sam2enc in the browser and in Node ≥ 20: open a bundle, load SAM2's decoder, turn clicks into masks.
// DOM-free; onnxruntime-web is imported on first use unless the caller passes its namespace as `ort`.
export { checkPhoto, openBundle } from "./bundle.js";
export { loadDecoder, segment, promptArrays, sameModel, modelMismatch } from "./decoder.js";
export { upsampleMask, maskToPng, cutout } from "./masks.js";
export { rleCounts, compressCounts, decompressCounts, rleEncode, rleDecode, maskBbox, maskArea, cocoDocument } from "./coco.js";
export { BYTE_LENGTH, FORMAT, INPUT_SIZE, LAYOUT, LOW_RES, MASK_THRESHOLD, VERSION } from "./layout.js";
