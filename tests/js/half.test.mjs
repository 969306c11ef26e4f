// openBundle's float16 → float32 conversion, every one of the 65,536 half values (subnormals, ±0, ±inf,
// NaN included) against NumPy's, read from the fixture tests/test_half_js.py writes. Masks would hide a
// wrong subnormal: values below 6.1e-5 barely move a logit.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";

import { openBundle } from "sam2enc";

const DIR = process.env.SAM2ENC_HALF_FIXTURES;

test("every float16 value converts exactly as NumPy converts it", { skip: !DIR && "set $SAM2ENC_HALF_FIXTURES" }, async () => {
  const bundle = await openBundle(await readFile(join(DIR, "manifest.json"), "utf8"), await readFile(join(DIR, "embedding.bin")));
  const raw = await readFile(join(DIR, "expected.f32"));
  const expected = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const got = bundle.features.image_embed.data;
  assert.equal(expected.length, 65536);
  const wrong = [];
  for (let h = 0; h < 65536; h++) {
    const same = Object.is(got[h], expected[h]) || (Number.isNaN(got[h]) && Number.isNaN(expected[h]));
    if (!same) wrong.push(`0x${h.toString(16).padStart(4, "0")}: ${got[h]} ≠ ${expected[h]}`);
  }
  assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} of 65,536 half values convert wrongly`);
});
