// The package, imported by its name as a user would, against masks the Python decoder made.
// Run by tests/test_js_module.py, which writes the fixtures and sets $SAM2ENC_JS_FIXTURES.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { before, describe, test } from "node:test";

import { loadDecoder, maskToPng, openBundle, segment } from "sam2enc";

const FIXTURES = process.env.SAM2ENC_JS_FIXTURES;
const fixtures = FIXTURES ? JSON.parse(await readFile(FIXTURES, "utf8")) : null;

async function readBundle(dir) {
  return [await readFile(join(dir, "manifest.json"), "utf8"), await readFile(join(dir, "embedding.bin"))];
}

function iou(mask, expected) {
  let both = 0, either = 0;
  for (let i = 0; i < mask.length; i++) {
    const a = mask[i] !== 0, b = expected[i] !== 0;
    both += a && b;
    either += a || b;
  }
  return either === 0 ? 1 : both / either;
}

describe("sam2enc module vs the Python decoder", { skip: !fixtures && "set $SAM2ENC_JS_FIXTURES (pytest tests/test_js_module.py does)" }, () => {
  let decoder, bundle;
  before(async () => {
    decoder = await loadDecoder(join(fixtures.models, "decoder.onnx")); // model.json read beside it
    bundle = await openBundle(...(await readBundle(fixtures.bundle)));
  });

  for (const name of ["click", "click_exclude", "box", "box_click"]) {
    test(`${name}: the same mask at the photo's size`, async () => {
      const { points, box, mask: maskPath, best } = fixtures.cases[name];
      const expected = await readFile(maskPath);
      const result = await segment(decoder, bundle, { points, box });
      assert.equal(result.width, fixtures.width);
      assert.equal(result.height, fixtures.height);
      assert.equal(result.mask.length, fixtures.width * fixtures.height);
      assert.equal(result.best, best);
      assert.ok(result.mask.every((v) => v === 0 || v === 255), "mask values are 0/255");
      const overlap = iou(result.mask, expected);
      assert.ok(overlap >= 0.999, `IoU ${overlap} with the Python decoder's mask`);
    });
  }

  test("a corrupted embedding is refused, naming sha256", async () => {
    await assert.rejects(openBundle(...(await readBundle(fixtures.corrupted))), /sha256/);
  });

  test("a bundle from another model is refused, naming both models", async () => {
    const other = await openBundle(...(await readBundle(fixtures.otherBundle)));
    await assert.rejects(segment(decoder, other, { points: [[10, 10, 1]] }), (err) => {
      assert.match(err.message, new RegExp(fixtures.otherModel));
      assert.match(err.message, new RegExp(`but the decoder is ${fixtures.model}`));
      return true;
    });
  });

  test("prompts are validated like Python's", async () => {
    await assert.rejects(segment(decoder, bundle, {}), /give at least one click or a box/);
    await assert.rejects(segment(decoder, bundle, { points: [[fixtures.width + 1, 0, 1]] }), /lies outside the/);
    await assert.rejects(segment(decoder, bundle, { points: [[1, 1, 2]] }), /label is 1/);
    await assert.rejects(segment(decoder, bundle, { box: [5, 5, 1, 1] }), /x0 < x1/);
  });

  test("the mask as PNG bytes", async () => {
    const { mask, width, height } = await segment(decoder, bundle, { points: fixtures.cases.click.points });
    const png = await maskToPng(mask, width, height);
    assert.deepEqual([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
    const view = new DataView(png.buffer, png.byteOffset);
    assert.equal(view.getUint32(16), width);
    assert.equal(view.getUint32(20), height);
  });

  test("the graph's bytes need modelInfo", async () => {
    await assert.rejects(loadDecoder(new Uint8Array(8), { ort: decoder.ort }), /modelInfo/);
  });
});
