// Types for the sam2enc module: open a bundle, load SAM2's decoder, turn clicks into masks.

/** A tensor's place in embedding.bin (bundle format version 1). */
export interface TensorSpec {
  offset: number;
  shape: number[];
  dtype: "float16";
}

export const FORMAT: "sam2enc-bundle";
export const VERSION: 1;
/** Clicks map to model space as x·INPUT_SIZE/width, y·INPUT_SIZE/height. */
export const INPUT_SIZE: number;
/** Size of embedding.bin in bytes (8,388,608). */
export const BYTE_LENGTH: number;
/** Side of the decoder's low-res logits (256). */
export const LOW_RES: number;
/** Logits above this are inside the mask (0). */
export const MASK_THRESHOLD: number;
export const LAYOUT: Readonly<Record<"image_embed" | "high_res_feats_0" | "high_res_feats_1", TensorSpec>>;

/** Which model encoded a bundle, or which one a decoder belongs to: the manifest's `model` entry. */
export interface ModelIdentity {
  name?: string;
  checkpointSha256?: string | null;
}

/** manifest.json (sam2enc/bundle.py is the specification). */
export interface Manifest {
  format: "sam2enc-bundle";
  version: number;
  tensors: Record<string, TensorSpec>;
  byteLength: number;
  sha256: string;
  originalWidth: number;
  originalHeight: number;
  inputSize: number;
  model: ModelIdentity;
  provider: string;
  precision?: "fp32" | "tf32" | "fp16";
  /** The photo it was encoded from: sha256 of its bytes as uploaded (added within version 1). */
  source?: { sha256: string };
  /** The Replicate model that encoded it (`sam2enc encode --remote` only). */
  replicate?: { model: string | null; version: string | null };
  [key: string]: unknown;
}

/** model.json, written by `sam2enc export` beside decoder.onnx. */
export interface ModelInfo {
  model: string;
  size?: string;
  checkpointSha256?: string | null;
  randomWeights?: boolean;
  [key: string]: unknown;
}

/** A verified bundle, its features converted to float32 once. */
export interface Bundle {
  readonly width: number;
  readonly height: number;
  readonly inputSize: number;
  readonly model: ModelIdentity;
  readonly provider: string;
  readonly sha256: string;
  /** sha256 of the photo's bytes as uploaded (manifest `source.sha256`); null for older bundles. */
  readonly source: string | null;
  readonly features: Readonly<Record<string, { data: Float32Array; dims: number[] }>>;
}

/** The `ort` namespace of onnxruntime-web (or anything with the same InferenceSession and Tensor). */
export type Ort = typeof import("onnxruntime-web");

export interface Decoder {
  readonly ort: Ort;
  readonly session: import("onnxruntime-web").InferenceSession;
  readonly executionProviders: string[];
  readonly modelInfo: ModelInfo;
  readonly model: { name: string; checkpointSha256: string | null };
}

export interface LoadDecoderOptions {
  /** Parsed model.json; required when `source` is the graph's bytes, else fetched beside the URL. */
  modelInfo?: ModelInfo | string;
  /** onnxruntime-web execution providers, in order of preference (default ["wasm"]). */
  executionProviders?: string[];
  /** The onnxruntime-web namespace (module workers cannot use import maps); default: import("onnxruntime-web"). */
  ort?: Ort;
}

/** A click [x, y, label] in pixels of the upright photo: label 1 = object, 0 = background. */
export type Point = [x: number, y: number, label: 0 | 1];
/** A box [x0, y0, x1, y1] in pixels of the upright photo. */
export type Box = [x0: number, y0: number, x1: number, y1: number];

export interface Prompt {
  points?: Point[];
  box?: Box | null;
  /** A previous result's lowResLogits[best] (256×256), to refine it. */
  maskInput?: Float32Array | null;
}

export interface Segmentation {
  /** The best mask at the photo's size, row-major, 0 or 255. */
  mask: Uint8Array;
  width: number;
  height: number;
  /** SAM2's predicted IoU of each of its three masks. */
  scores: Float32Array;
  /** Index of the highest score: the mask returned. */
  best: number;
  /** The three masks' logits (256×256, clamped to ±32; 512×512 unclamped from decoder_hires.onnx). */
  lowResLogits: Float32Array[];
}

/**
 * Verify a bundle (format, version, layout, byteLength, sha256 with Web Crypto) and convert it to float32.
 * Rejects with an Error whose message is one sentence saying what is wrong.
 */
export function openBundle(manifest: Manifest | string, embedding: ArrayBuffer | Uint8Array): Promise<Bundle>;

/** A photo to match against a bundle: its bytes as uploaded, and its upright size (EXIF applied). */
export interface PhotoToMatch {
  bytes?: ArrayBuffer | Uint8Array;
  width: number;
  height: number;
}

/**
 * Is `photo` the one `bundle` was encoded from? Its upright size, and the sha256 of its bytes where the
 * bundle records it (`source.sha256`). Rejects with an Error of one sentence when it is not.
 */
export function checkPhoto(bundle: Bundle, photo: PhotoToMatch): Promise<void>;

/**
 * Load decoder.onnx or decoder_hires.onnx: from a URL (model.json is read beside it; in Node also a file
 * path or file: URL) or from its bytes (then `modelInfo` is required).
 */
export function loadDecoder(source: string | URL | ArrayBuffer | Uint8Array, options?: LoadDecoderOptions): Promise<Decoder>;

/**
 * Decode a prompt on a bundle, with the arithmetic of sam2enc/decoder.py. Rejects a bundle encoded by
 * another model than the decoder's, and malformed prompts, with one sentence.
 */
export function segment(decoder: Decoder, bundle: Bundle, prompt: Prompt): Promise<Segmentation>;

/** Validate prompts and map them to model space (box corners labelled 2 and 3 first, then the clicks). */
export function promptArrays(
  width: number,
  height: number,
  points?: Point[],
  box?: Box | null,
): { pointCoords: Float32Array; pointLabels: Float32Array; count: number };

/** Whether a bundle's model is the decoder's: checkpointSha256 when both have one, else the name. */
export function sameModel(bundleModel: ModelIdentity, decoderModel: ModelIdentity): boolean;
/** The sentence a model mismatch is refused with, naming both models. */
export function modelMismatch(bundleModel: ModelIdentity, decoderModel: ModelIdentity): string;

/** Upsample one size×size logits map (bilinear, align_corners=False) and set `on` where the logit is > 0. */
export function upsampleMask<T extends Uint8Array | Uint32Array = Uint8Array>(
  logits: Float32Array,
  options: { offset?: number; size?: number; width: number; height: number; out?: T; on?: number },
): T;

/** A 0/255 mask as the bytes of an 8-bit grayscale PNG. */
export function maskToPng(mask: Uint8Array, width: number, height: number): Promise<Uint8Array>;

/** The photo's RGBA pixels with alpha cleared outside the mask. */
export function cutout(rgba: Uint8Array | Uint8ClampedArray, mask: Uint8Array): Uint8ClampedArray;

// --- COCO (lib/coco.js; sam2enc/coco.py builds the same document) ----------------------------------

/** COCO RLE as pycocotools writes it: column-major runs starting with the 0s, compressed to a string. */
export interface Rle {
  size: [height: number, width: number];
  counts: string;
}

/** Run lengths of a row-major mask (nonzero = inside) read column-major, starting with the run of 0s. */
export function rleCounts(mask: ArrayLike<number>, width: number, height: number): number[];
/** pycocotools' rleToString: counts → COCO's compact `counts` string. */
export function compressCounts(counts: ArrayLike<number>): string;
/** pycocotools' rleFrString: COCO's `counts` string → counts. Throws one sentence on a malformed string. */
export function decompressCounts(text: string): number[];
/** A row-major mask → its RLE, byte for byte what pycocotools.mask.encode writes. */
export function rleEncode(mask: ArrayLike<number>, width: number, height: number): Rle;
/** An RLE (compressed or uncompressed counts) → a row-major 0/255 mask. */
export function rleDecode(rle: { size: [number, number]; counts: string | number[] }): {
  mask: Uint8Array;
  width: number;
  height: number;
};
/** COCO's [x, y, width, height] of the mask's pixels; [0, 0, 0, 0] when empty. */
export function maskBbox(mask: ArrayLike<number>, width: number, height: number): [number, number, number, number];
/** The number of nonzero pixels. */
export function maskArea(mask: ArrayLike<number>): number;

/** One object to export: its label (default "object"), its mask at the photo's size and its prompts. */
export interface CocoObject {
  label?: string;
  mask: ArrayLike<number>;
  points?: Point[];
  box?: Box | null;
}

export interface CocoAnnotation {
  id: number;
  image_id: 1;
  category_id: number;
  segmentation: Rle;
  bbox: [number, number, number, number];
  area: number;
  iscrowd: 0;
  /** The prompts that made the mask, in pixels of the upright photo: `sam2enc decode --prompts` reads them. */
  sam2enc: { points: Point[]; box: Box | null };
}

export interface CocoDocument {
  images: [{ id: 1; file_name: string; width: number; height: number }];
  categories: { id: number; name: string; supercategory: string }[];
  annotations: CocoAnnotation[];
}

/**
 * One photo's COCO document: image 1, a category per label in order of first use, annotation i for
 * object i. Throws one sentence when a mask is not the photo's size or a label is empty.
 */
export function cocoDocument(photo: { fileName: string; width: number; height: number; objects: CocoObject[] }): CocoDocument;
