// Low-res logits → masks at the photo's size, PNG bytes and cutouts. No DOM: typed arrays in and out.
//
// Upsampling is bilinear with align_corners=False (torch.nn.functional.interpolate), then the LOGITS are
// thresholded at 0 — never the binary mask — as sam2enc/decoder.py does. Done separably: the source rows
// are interpolated to the output width once, then blended per output row, with float32 source positions
// like torch and float64 sums, so a full-size mask equals `sam2enc decode`'s.
import { MASK_THRESHOLD } from "./layout.js";

function axis(outSize, inSize) {
  const scale = Math.fround(inSize / outSize);
  const lo = new Int32Array(outSize), hi = new Int32Array(outSize), frac = new Float32Array(outSize);
  for (let i = 0; i < outSize; i++) {
    const src = Math.max(Math.fround(Math.fround(scale * Math.fround(i + 0.5)) - 0.5), 0);
    lo[i] = Math.min(Math.floor(src), inSize - 1);
    hi[i] = Math.min(lo[i] + 1, inSize - 1);
    frac[i] = Math.min(Math.max(src - lo[i], 0), 1);
  }
  return { lo, hi, frac };
}

/**
 * Upsample one square logits map and threshold it: out[i] = on where the logit is above 0.
 * @param {Float32Array} logits  one or more size×size maps, back to back
 * @param {{offset?: number, size?: number, width: number, height: number, out?: Uint8Array|Uint32Array, on?: number}} options
 */
export function upsampleMask(logits, { offset = 0, size = 256, width, height, out, on = 255 }) {
  out = out ?? new Uint8Array(width * height);
  const xs = axis(width, size), ys = axis(height, size);
  const rows = new Float64Array(size * width);
  for (let r = 0; r < size; r++) {
    const base = offset + r * size, dst = r * width;
    for (let x = 0; x < width; x++) {
      const f = xs.frac[x];
      rows[dst + x] = logits[base + xs.lo[x]] * (1 - f) + logits[base + xs.hi[x]] * f;
    }
  }
  for (let y = 0; y < height; y++) {
    const r0 = ys.lo[y] * width, r1 = ys.hi[y] * width, fy = ys.frac[y], dst = y * width;
    for (let x = 0; x < width; x++) {
      if (rows[r0 + x] * (1 - fy) + rows[r1 + x] * fy > MASK_THRESHOLD) out[dst + x] = on;
    }
  }
  return out;
}

// --- PNG (8-bit grayscale, what `sam2enc decode` writes) -------------------------------------------
const CRC = new Uint32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function chunk(type, data) {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  let c = 0xffffffff;
  for (let i = 4; i < 8 + data.length; i++) c = CRC[(c ^ out[i]) & 0xff] ^ (c >>> 8);
  view.setUint32(8 + data.length, (c ^ 0xffffffff) >>> 0);
  return out;
}

/**
 * A 0/255 mask as the bytes of an 8-bit grayscale PNG (CompressionStream: browsers and Node ≥ 18).
 * @returns {Promise<Uint8Array>}
 */
export async function maskToPng(mask, width, height) {
  if (mask.length !== width * height) throw new Error(`the mask has ${mask.length} pixels, not ${width}×${height}.`);
  const raw = new Uint8Array((width + 1) * height); // filter byte 0 before each row
  for (let y = 0; y < height; y++) raw.set(mask.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  const stream = new Blob([raw]).stream().pipeThrough(new CompressionStream("deflate"));
  const zlib = new Uint8Array(await new Response(stream).arrayBuffer());
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header.set([8, 0, 0, 0, 0], 8); // bit depth 8, grayscale, deflate, no filter, no interlace
  const parts = [Uint8Array.of(137, 80, 78, 71, 13, 10, 26, 10), chunk("IHDR", header), chunk("IDAT", zlib), chunk("IEND", new Uint8Array(0))];
  const png = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) { png.set(part, at); at += part.length; }
  return png;
}

/**
 * The photo's RGBA pixels (ImageData.data or any RGBA array) with alpha taken from the mask.
 * @returns {Uint8ClampedArray}
 */
export function cutout(rgba, mask) {
  if (rgba.length !== mask.length * 4) throw new Error(`the photo has ${rgba.length / 4} pixels and the mask ${mask.length}.`);
  const out = new Uint8ClampedArray(rgba);
  for (let i = 0; i < mask.length; i++) out[4 * i + 3] = mask[i] ? out[4 * i + 3] : 0;
  return out;
}
