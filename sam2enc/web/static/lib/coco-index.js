// "sam2enc/coco": masks as COCO RLE (byte for byte what pycocotools writes), one photo's COCO document and
// a dataset's (several photos), as sam2enc/coco.py builds them. The run-length helpers behind them stay
// internal (coco.js).
export { rleEncode, rleDecode, maskBbox, maskArea, cocoDocument, cocoDataset } from "./coco.js";
