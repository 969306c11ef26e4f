// Types for "sam2enc/coco": COCO RLE and documents (lib/coco.js; sam2enc/coco.py builds the same document).
import type { Box, Point } from "./index.js";

/** COCO RLE as pycocotools writes it: column-major runs starting with the 0s, compressed to a string. */
export interface Rle {
  size: [height: number, width: number];
  counts: string;
}

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

export interface CocoDataset {
  /** One per photo in the dataset's order, photos without objects included; `sam2enc.sha256`: the photo's bytes. */
  images: { id: number; file_name: string; width: number; height: number; sam2enc?: { sha256: string } }[];
  categories: { id: number; name: string; supercategory: string }[];
  annotations: (Omit<CocoAnnotation, "image_id"> & { image_id: number })[];
}

/**
 * A dataset's COCO document (the page's "Download COCO (dataset)"; `sam2enc decode BUNDLES_DIR --prompts`
 * remakes it): image i per photo i, categories by first use across the dataset, annotations 1..n in image
 * order. `cocoDocument(photo)` is `cocoDataset([photo])`. Throws one sentence naming the photo and object.
 */
export function cocoDataset(
  photos: { fileName: string; width: number; height: number; sha256?: string; objects?: CocoObject[] }[],
): CocoDataset;
