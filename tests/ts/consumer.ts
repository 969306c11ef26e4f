// A TypeScript app using the package as published: type-checked with `tsc --noEmit --strict` by
// tests/test_js_module.py, under both "bundler" and "nodenext" module resolution (tsconfig*.json).
import { checkPhoto, cutout, loadDecoder, maskToPng, openBundle, segment, upsampleMask } from "sam2enc";
import type { Box, Bundle, Decoder, Manifest, Point, Segmentation } from "sam2enc";
import { cocoDataset, cocoDocument, maskArea, maskBbox, rleDecode, rleEncode } from "sam2enc/coco";
import type { CocoDataset, CocoDocument, Rle } from "sam2enc/coco";
// @ts-expect-error internals are not part of the API
import { LAYOUT } from "sam2enc";
// @ts-expect-error internals are not part of the API
import { compressCounts } from "sam2enc/coco";

export async function click(manifest: Manifest | string, embedding: ArrayBuffer, photo: Uint8Array): Promise<Uint8Array> {
  const decoder: Decoder = await loadDecoder("/models/decoder.onnx", { executionProviders: ["webgpu", "wasm"] });
  const backend: string = decoder.backend;
  const why: string | null = decoder.fallback;
  const bundle: Bundle = await openBundle(manifest, embedding);
  await checkPhoto(bundle, { bytes: photo, width: bundle.width, height: bundle.height });
  const points: Point[] = [[410, 300, 1], [520, 90, 0]];
  const box: Box = [10, 20, 300, 400];
  const first: Segmentation = await segment(decoder, bundle, { points, box });
  const refined = await segment(decoder, bundle, { points, maskInput: first.lowResLogits[first.best] });
  // @ts-expect-error a click's label is 0 or 1
  await segment(decoder, bundle, { points: [[1, 2, 3]] });
  const upsampled: Uint8Array = upsampleMask(refined.lowResLogits[refined.best], { width: refined.width, height: refined.height });
  const rgba: Uint8ClampedArray = cutout(new Uint8ClampedArray(upsampled.length * 4), upsampled);
  const rle: Rle = rleEncode(refined.mask, refined.width, refined.height);
  const document: CocoDocument = cocoDocument({
    fileName: "photo.jpg", width: refined.width, height: refined.height,
    objects: [{ label: "cup", mask: rleDecode(rle).mask, points, box }],
  });
  const dataset: CocoDataset = cocoDataset([
    { fileName: "beach/a.jpg", width: refined.width, height: refined.height, sha256: "ab".repeat(32), objects: [{ mask: refined.mask, points }] },
    { fileName: "b.jpg", width: 640, height: 480 }, // a photo without objects is still listed
  ]);
  const imageId: number = dataset.annotations[0].image_id;
  console.log(backend, why, rgba.length, maskArea(refined.mask), maskBbox(refined.mask, refined.width, refined.height), document, dataset, imageId, LAYOUT, compressCounts);
  await decoder.dispose();
  return maskToPng(refined.mask, refined.width, refined.height);
}
