// The package, imported by its name as a user would, against masks the Python decoder made.
// Run by tests/test_js_module.py, which writes the fixtures and sets $SAM2ENC_JS_FIXTURES.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { before, describe, test } from "node:test";

import * as sam2enc from "sam2enc";
import * as coco from "sam2enc/coco";
import { checkPhoto, loadDecoder, maskToPng, openBundle, segment } from "sam2enc";
import { sha256 } from "../../sam2enc/web/static/lib/sha256.js"; // internal: the fallback itself

const FIXTURES = process.env.SAM2ENC_JS_FIXTURES;
const fixtures = FIXTURES ? JSON.parse(await readFile(FIXTURES, "utf8")) : null;

async function readBundle(dir) {
  return [await readFile(join(dir, "manifest.json"), "utf8"), await readFile(join(dir, "embedding.bin"))];
}

// IoU against a reference that covers part of the photo: an empty or full reference would let an empty
// or full mask agree whatever the code did (random weights can cover 92-95 % of a photo).
function iou(mask, expected) {
  let both = 0, either = 0, covered = 0;
  for (let i = 0; i < mask.length; i++) {
    const a = mask[i] !== 0, b = expected[i] !== 0;
    both += a && b;
    either += a || b;
    covered += b;
  }
  assert.ok(covered > 0 && covered < expected.length, `the reference covers ${covered} of ${expected.length} pixels: a comparison testing nothing`);
  return both / either;
}

/** Run `body` as a page in an insecure context runs: `crypto` without `subtle` (http://192.168.x.x). */
async function withoutSubtle(body) {
  const descriptor = Object.getOwnPropertyDescriptor(globalThis, "crypto");
  const { getRandomValues } = globalThis.crypto;
  Object.defineProperty(globalThis, "crypto", { value: { getRandomValues }, configurable: true });
  try {
    assert.equal(globalThis.crypto.subtle, undefined);
    return await body();
  } finally {
    Object.defineProperty(globalThis, "crypto", descriptor);
  }
}

/** The functions and constants a .d.ts file of lib/ declares. */
function declared(name) {
  const text = readFileSync(new URL(`../../sam2enc/web/static/lib/${name}`, import.meta.url), "utf8");
  return [...text.matchAll(/^export (?:function|const) (\w+)/gm)].map((m) => m[1]).sort();
}

test("the public API: the core at \".\", COCO at \"./coco\", no internals; the types declare the same", () => {
  assert.deepEqual(Object.keys(sam2enc).sort(), ["checkPhoto", "cutout", "loadDecoder", "maskToPng", "openBundle", "segment", "upsampleMask"]);
  assert.deepEqual(Object.keys(coco).sort(), ["cocoDataset", "cocoDocument", "maskArea", "maskBbox", "rleDecode", "rleEncode"]);
  assert.deepEqual(declared("index.d.ts"), Object.keys(sam2enc).sort());
  assert.deepEqual(declared("coco-index.d.ts"), Object.keys(coco).sort());
});

test("the SHA-256 fallback is SHA-256 at every padding boundary", () => {
  for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 1000, 65537]) {
    const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 2654435761) >>> 24);
    const want = createHash("sha256").update(bytes).digest("hex");
    assert.equal(Buffer.from(sha256(bytes)).toString("hex"), want, `${n} bytes`);
  }
});

describe("sam2enc module vs the Python decoder", { skip: !fixtures && "set $SAM2ENC_JS_FIXTURES (pytest tests/test_js_module.py does)" }, () => {
  let decoder, bundle;
  const results = {}; // reused by later tests: each decode costs ~0.3-1 s of one shared core
  before(async () => {
    decoder = await loadDecoder(join(fixtures.models, "decoder.onnx")); // model.json read beside it
    bundle = await openBundle(...(await readBundle(fixtures.bundle)));
  });

  for (const name of ["click", "click_exclude", "box", "box_click"]) {
    test(`${name}: the same mask at the photo's size`, async () => {
      const { points, box, mask: maskPath, best } = fixtures.cases[name];
      const expected = await readFile(maskPath);
      const result = (results[name] = await segment(decoder, bundle, { points, box }));
      assert.equal(result.width, fixtures.width);
      assert.equal(result.height, fixtures.height);
      assert.equal(result.mask.length, fixtures.width * fixtures.height);
      assert.equal(result.best, best);
      assert.ok(result.mask.every((v) => v === 0 || v === 255), "mask values are 0/255");
      const overlap = iou(result.mask, expected);
      assert.ok(overlap >= 0.999, `IoU ${overlap} with the Python decoder's mask`);
    });
  }

  test("refine: a second click fed the first result's lowResLogits[best] as maskInput", async () => {
    const { points, mask: maskPath, best } = fixtures.cases.refine;
    const first = results.click ?? (await segment(decoder, bundle, { points: fixtures.cases.click.points }));
    const result = await segment(decoder, bundle, { points, maskInput: first.lowResLogits[first.best] });
    assert.equal(result.best, best);
    const overlap = iou(result.mask, await readFile(maskPath));
    assert.ok(overlap >= 0.999, `IoU ${overlap} with the Python decoder's mask`);
  });

  test("decoder_hires.onnx: the same mask as Python's hi-res decoder", async () => {
    const { points, mask: maskPath, best, logitSize } = fixtures.cases.hires_click;
    const hires = await loadDecoder(join(fixtures.models, "decoder_hires.onnx"), { ort: decoder.ort });
    const result = await segment(hires, bundle, { points });
    assert.equal(result.best, best);
    assert.equal(result.lowResLogits[0].length, logitSize * logitSize);
    const overlap = iou(result.mask, await readFile(maskPath));
    assert.ok(overlap >= 0.999, `IoU ${overlap} with the Python decoder's mask`);
    await hires.session.release();
  });

  test("a bad manifest or embedding is refused with Python's sentence", async () => {
    const [manifest, embedding] = await readBundle(fixtures.bundle);
    const parsed = JSON.parse(manifest);
    await assert.rejects(openBundle({ ...parsed, version: 2 }, embedding), /bundle version 2 is not supported/);
    await assert.rejects(openBundle(parsed, embedding.subarray(0, 1000)), /embedding.bin has 1,000 bytes, expected 8,388,608/);
    await assert.rejects(openBundle({ ...parsed, format: "x" }, embedding), /does not describe a sam2enc-bundle/);
    await assert.rejects(openBundle("{", embedding), /not valid JSON/);
  });

  test("the bundle names its photo by sha256; older bundles are matched by size", async () => {
    const photo = await readFile(fixtures.photo), other = await readFile(fixtures.otherPhoto);
    const size = { width: fixtures.width, height: fixtures.height };
    assert.match(bundle.source, /^[0-9a-f]{64}$/);
    await checkPhoto(bundle, { bytes: photo, ...size });
    // another photo, even at the bundle's size: refused by its bytes
    await assert.rejects(checkPhoto(bundle, { bytes: other, ...size }), /not the one the bundle was encoded from/);
    const [text, embedding] = await readBundle(fixtures.bundle);
    const { source, ...older } = JSON.parse(text); // a bundle written before `source`
    const old = await openBundle(older, embedding);
    assert.equal(old.source, null);
    await checkPhoto(old, { bytes: other, ...size });
    await assert.rejects(checkPhoto(old, { bytes: photo, width: size.width + 1, height: size.height }), /upright, but the bundle was encoded from a/);
    await assert.rejects(openBundle({ ...older, source: { sha256: "x" } }, embedding), /source.sha256 must be 64 lowercase hex digits/);
  });

  test("a corrupted embedding is refused, naming sha256", async () => {
    await assert.rejects(openBundle(...(await readBundle(fixtures.corrupted))), /sha256/);
  });

  test("without crypto.subtle (an insecure context) bundles are still verified, never a TypeError", async () => {
    const [manifest, embedding] = await readBundle(fixtures.bundle);
    const photo = await readFile(fixtures.photo), other = await readFile(fixtures.otherPhoto);
    const size = { width: fixtures.width, height: fixtures.height };
    await withoutSubtle(async () => {
      const verified = await openBundle(manifest, embedding);
      assert.equal(verified.sha256, bundle.sha256);
      await assert.rejects(openBundle(...(await readBundle(fixtures.corrupted))), /does not match the manifest's sha256/);
      await checkPhoto(verified, { bytes: photo, ...size });
      await assert.rejects(checkPhoto(verified, { bytes: other, ...size }), /not the one the bundle was encoded from/);
    });
  });

  test("a provider that cannot start falls back to the next, saying why; dispose() frees the decoder", async () => {
    const gpuFirst = await loadDecoder(join(fixtures.models, "decoder.onnx"), { ort: decoder.ort, executionProviders: ["webgpu", "wasm"] });
    assert.equal(gpuFirst.backend, "wasm");
    assert.match(gpuFirst.fallback, /^webgpu could not start \(/);
    assert.equal(decoder.backend, "wasm");
    assert.equal(decoder.fallback, null);
    const { points, box, mask: maskPath } = fixtures.cases.click;
    const overlap = iou((await segment(gpuFirst, bundle, { points, box })).mask, await readFile(maskPath));
    assert.ok(overlap >= 0.999, `IoU ${overlap}`);
    await gpuFirst.dispose();
    await gpuFirst.dispose(); // twice is harmless
    await assert.rejects(segment(gpuFirst, bundle, { points }), /this decoder was disposed: load it again/);
    await assert.rejects(gpuFirst.session.run({}), "its session is released");
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
    const { mask, width, height } = results.click ?? (await segment(decoder, bundle, { points: fixtures.cases.click.points }));
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
