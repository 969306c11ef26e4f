// Types for "sam2enc": open a bundle, load SAM2's decoder, turn clicks into masks (COCO: "sam2enc/coco").

/** A tensor's place in embedding.bin (bundle format version 1). */
export interface TensorSpec {
  offset: number;
  shape: number[];
  dtype: "float16";
}

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

/** An execution provider by name ("wasm", "webgpu") or with its onnxruntime-web options. */
export type ExecutionProvider = string | { name: string; [option: string]: unknown };

export interface Decoder {
  readonly ort: Ort;
  readonly session: import("onnxruntime-web").InferenceSession;
  /** The providers asked for, in order of preference. */
  readonly executionProviders: ExecutionProvider[];
  /** The provider the session runs on: the first of `executionProviders` that could start. */
  readonly backend: string;
  /** Why `backend` is not the first provider asked for (one sentence), or null when it is. */
  readonly fallback: string | null;
  readonly modelInfo: ModelInfo;
  readonly model: { name: string; checkpointSha256: string | null };
  /** Free the session and any GPU buffers holding a bundle's features; the decoder is unusable after. */
  dispose(): Promise<void>;
}

export interface LoadDecoderOptions {
  /** Parsed model.json; required when `source` is the graph's bytes, else fetched beside the URL. */
  modelInfo?: ModelInfo | string;
  /**
   * onnxruntime-web execution providers, in order of preference (default ["wasm"]). Each is tried on its
   * own: a session that cannot start on one falls back to the next. With "webgpu" and no `ort`, the JSPI
   * WebGPU build is imported where the browser has WebGPU and JS Promise Integration, else the WASM build.
   */
  executionProviders?: ExecutionProvider[];
  /**
   * The onnxruntime-web namespace to use (module workers cannot use import maps; an app with its own
   * import of onnxruntime-web). Default: "onnxruntime-web/wasm" (WASM only, no WebGPU code or 28 MB
   * JSEP wasm in your bundle), "onnxruntime-web/jspi" when WebGPU is asked for; in Node, "onnxruntime-web".
   */
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
 * Verify a bundle (format, version, layout, byteLength, sha256: Web Crypto, or the module's own SHA-256
 * where `crypto.subtle` is missing, as on a page served over plain http from a LAN address) and convert
 * it to float32. Rejects with an Error whose message is one sentence saying what is wrong.
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
 * path or file: URL) or from its bytes (then `modelInfo` is required). On WebGPU, a bundle's features are
 * uploaded to the GPU once (for the bundle in use), not per click.
 */
export function loadDecoder(source: string | URL | ArrayBuffer | Uint8Array, options?: LoadDecoderOptions): Promise<Decoder>;

/**
 * Decode a prompt on a bundle, with the arithmetic of sam2enc/decoder.py. Rejects a bundle encoded by
 * another model than the decoder's, and malformed prompts, with one sentence.
 */
export function segment(decoder: Decoder, bundle: Bundle, prompt: Prompt): Promise<Segmentation>;

/** Upsample one size×size logits map (bilinear, align_corners=False) and set `on` where the logit is > 0. */
export function upsampleMask<T extends Uint8Array | Uint32Array = Uint8Array>(
  logits: Float32Array,
  options: { offset?: number; size?: number; width: number; height: number; out?: T; on?: number },
): T;

/** A 0/255 mask as the bytes of an 8-bit grayscale PNG. */
export function maskToPng(mask: Uint8Array, width: number, height: number): Promise<Uint8Array>;

/** The photo's RGBA pixels with alpha cleared outside the mask. */
export function cutout(rgba: Uint8Array | Uint8ClampedArray, mask: Uint8Array): Uint8ClampedArray;
