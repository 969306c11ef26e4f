// "sam2enc/coco": masks as COCO RLE (byte for byte what pycocotools writes) and one photo's COCO document,
// as sam2enc/coco.py builds it. The run-length helpers behind them stay internal (coco.js).
export { rleEncode, rleDecode, maskBbox, maskArea, cocoDocument } from "./coco.js";
