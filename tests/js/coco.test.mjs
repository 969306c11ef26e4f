// lib/coco.js against pycocotools and sam2enc/coco.py. Run by tests/test_coco.py, which writes the
// fixtures (masks as raw row-major bytes, pycocotools' RLE, bbox and area, a document built by
// coco_document and a dataset's by coco_dataset) and sets $SAM2ENC_COCO_FIXTURES. Without them only the
// self-contained cases run, so that `node --test tests/js/` (tests/test_js_module.py) skips nothing.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, test } from "node:test";

import { cocoDocument, maskArea, maskBbox, rleDecode, rleEncode } from "sam2enc/coco";
import { cocoDataset, compressCounts, decompressCounts, rleCounts } from "../../sam2enc/web/static/lib/coco.js"; // internal

const FIXTURES = process.env.SAM2ENC_COCO_FIXTURES;
const fixtures = FIXTURES ? JSON.parse(await readFile(FIXTURES, "utf8")) : null;

describe("COCO RLE, self-contained", () => {
  test("column-major runs starting with the 0s", () => {
    // [[1, 1, 0], [0, 1, 1]]: columns (1,0) (1,1) (0,1)
    assert.deepEqual(rleCounts(Uint8Array.of(1, 1, 0, 0, 1, 1), 3, 2), [0, 1, 1, 2, 1, 1]);
    assert.deepEqual(rleEncode(new Uint8Array(15), 5, 3), { size: [3, 5], counts: "?" }); // pycocotools' bytes
    assert.deepEqual(rleEncode(new Uint8Array(15).fill(255), 5, 3), { size: [3, 5], counts: "0?" });
  });

  test("large and negative differences survive compression", () => {
    const counts = [0, 3_000_000, 7, 123_456_789, 1, 2, 999_999, 0, 5];
    assert.deepEqual(decompressCounts(compressCounts(counts)), counts);
  });

  test("a mask that is not width×height, or counts for another size, are refused in one sentence", () => {
    assert.throws(() => rleEncode(new Uint8Array(5), 2, 2), /the mask has 5 pixels, not 2×2/);
    assert.throws(() => rleDecode({ size: [3, 4], counts: [5, 6] }), /not the 4×3 photo's 12 pixels/);
    assert.throws(() => cocoDocument({ fileName: "x", width: 2, height: 2, objects: [{ mask: new Uint8Array(3), points: [[1, 1, 1]] }] }), /object 1's mask has 3 pixels/);
  });
});

describe("COCO datasets, self-contained", () => {
  const photo = { fileName: "a.png", width: 3, height: 2, objects: [{ label: "cup", mask: Uint8Array.of(0, 1, 1, 0, 1, 0), points: [[1, 1, 1]] }] };

  test("a photo's document is the dataset of that photo alone, without a sha256", () => {
    const document = cocoDocument(photo);
    assert.deepEqual(document, cocoDataset([photo]));
    assert.deepEqual(document.images, [{ id: 1, file_name: "a.png", width: 3, height: 2 }]);
  });

  test("images in order, objects or not; annotations numbered across the dataset; categories by first use", () => {
    const document = cocoDataset([
      { fileName: "none.png", width: 1, height: 1, sha256: "0f".repeat(32), objects: [] },
      { ...photo, fileName: "beach/a.png", objects: [{ ...photo.objects[0], label: "sand" }, photo.objects[0]] },
      { ...photo, fileName: "b.png", sha256: "ab".repeat(32) },
    ]);
    assert.deepEqual(document.images.map((i) => [i.id, i.file_name, i.sam2enc?.sha256]), [
      [1, "none.png", "0f".repeat(32)], [2, "beach/a.png", undefined], [3, "b.png", "ab".repeat(32)],
    ]);
    assert.ok(!("sam2enc" in document.images[1]), "no sha256, no sam2enc key");
    assert.deepEqual(document.annotations.map((a) => [a.id, a.image_id, a.category_id]), [[1, 2, 1], [2, 2, 2], [3, 3, 2]]);
    assert.deepEqual(document.categories.map((c) => [c.id, c.name]), [[1, "sand"], [2, "cup"]]);
  });

  test("a bad object is one sentence naming its photo and number", () => {
    const bad = (object) => cocoDataset([photo, { ...photo, fileName: "beach/b.png", objects: [photo.objects[0], object] }]);
    assert.throws(() => bad({ mask: new Uint8Array(5), points: [[1, 1, 1]] }), /^Error: beach\/b\.png: object 2's mask has 5 pixels, the photo 3×2\.$/);
    assert.throws(() => bad({ ...photo.objects[0], label: " " }), /^Error: beach\/b\.png: object 2's label must be a non-empty string\.$/);
  });
});

describe("COCO in JS vs pycocotools and sam2enc/coco.py", { skip: !fixtures }, () => {
  for (const c of fixtures?.cases ?? []) {
    test(`${c.name}: pycocotools' RLE, bbox and area; decodes back`, async () => {
      const mask = new Uint8Array(await readFile(c.mask));
      assert.deepEqual(rleCounts(mask, c.width, c.height), c.uncompressed);
      const rle = rleEncode(mask, c.width, c.height);
      assert.deepEqual(rle, { size: [c.height, c.width], counts: c.counts });
      assert.deepEqual(maskBbox(mask, c.width, c.height), c.bbox);
      assert.equal(maskArea(mask), c.area);
      assert.deepEqual(decompressCounts(c.counts), c.uncompressed);
      const back = rleDecode({ size: [c.height, c.width], counts: c.counts });
      assert.equal(back.width, c.width);
      assert.equal(back.height, c.height);
      assert.ok(back.mask.every((v, i) => (v !== 0) === (mask[i] !== 0)), "decoded mask differs");
    });
  }

  test("the document sam2enc/coco.py builds from the same objects", async () => {
    const { fileName, width, height, objects, expected } = fixtures.document;
    const withMasks = await Promise.all(objects.map(async (o) => ({ ...o, mask: new Uint8Array(await readFile(o.mask)) })));
    assert.deepEqual(cocoDocument({ fileName, width, height, objects: withMasks }), expected);
  });

  test("the dataset document sam2enc/coco.py builds from the same photos, byte for byte", async () => {
    const { photos, expected, expectedJson } = fixtures.dataset;
    const withMasks = await Promise.all(photos.map(async (photo) => ({
      ...photo,
      objects: await Promise.all(photo.objects.map(async (o) => ({ ...o, mask: new Uint8Array(await readFile(o.mask)) }))),
    })));
    const document = cocoDataset(withMasks);
    assert.deepEqual(document, expected);
    assert.equal(JSON.stringify(document), expectedJson);
  });
});
