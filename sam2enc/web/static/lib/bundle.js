// openBundle: a bundle's manifest + embedding.bin, verified against the format, as float32 tensors.
// The same checks, in the same order and words, as sam2enc/bundle.py parse_bundle; the layout comes from
// layout.js, which is generated from Python's bundle.LAYOUT.
import { BYTE_LENGTH, FORMAT, INPUT_SIZE, LAYOUT, VERSION } from "./layout.js";
import { sha256 as sha256Js } from "./sha256.js";

// float16 → float32 by table: exact for every value, and independent of Float16Array support.
let HALF = null;
function halfTable() {
  if (HALF) return HALF;
  HALF = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    HALF[h] = exp === 0 ? sign * 2 ** -14 * (frac / 1024)
      : exp === 31 ? (frac ? NaN : sign * Infinity)
      : sign * 2 ** (exp - 15) * (1 + frac / 1024);
  }
  return HALF;
}

function bytesOf(embedding) {
  if (embedding instanceof ArrayBuffer) return new Uint8Array(embedding);
  if (ArrayBuffer.isView(embedding)) return new Uint8Array(embedding.buffer, embedding.byteOffset, embedding.byteLength);
  throw new TypeError("the embedding must be an ArrayBuffer or a Uint8Array (the bytes of embedding.bin)");
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Web Crypto where the page has it; the module's own SHA-256 where it does not (insecure contexts). */
async function sha256(bytes) {
  const subtle = globalThis.crypto?.subtle;
  return hex(subtle ? await subtle.digest("SHA-256", bytes) : sha256Js(bytes));
}

/** The manifest's record of its photo (`source.sha256`), null for bundles written before it. */
function sourceOf(manifest) {
  if (!("source" in manifest)) return null;
  const digest = manifest.source?.sha256;
  if (typeof digest !== "string" || !/^[0-9a-f]{64}$/.test(digest)) {
    throw new Error("manifest source.sha256 must be 64 lowercase hex digits");
  }
  return digest;
}

function sameLayout(tensors) {
  if (!tensors || typeof tensors !== "object") return false;
  const names = Object.keys(LAYOUT);
  if (Object.keys(tensors).length !== names.length) return false;
  return names.every((name) => {
    const want = LAYOUT[name], got = tensors[name];
    return got && got.offset === want.offset && got.dtype === want.dtype && Array.isArray(got.shape)
      && got.shape.length === want.shape.length && got.shape.every((d, i) => d === want.shape[i]);
  });
}

/**
 * Verify a bundle and convert its features to float32 once.
 * @param {object|string} manifest manifest.json, parsed or as text
 * @param {ArrayBuffer|Uint8Array} embedding the bytes of embedding.bin
 */
export async function openBundle(manifest, embedding) {
  if (typeof manifest === "string") {
    try {
      manifest = JSON.parse(manifest);
    } catch (err) {
      throw new Error(`manifest.json is not valid JSON (${err.message})`);
    }
  }
  if (!manifest || typeof manifest !== "object" || manifest.format !== FORMAT) {
    throw new Error(`manifest.json does not describe a ${FORMAT}`);
  }
  if (manifest.version !== VERSION) {
    throw new Error(`bundle version ${JSON.stringify(manifest.version)} is not supported (this reader knows version ${VERSION})`);
  }
  const bytes = bytesOf(embedding);
  if (bytes.byteLength !== BYTE_LENGTH) {
    throw new Error(`embedding.bin has ${bytes.byteLength.toLocaleString("en-US")} bytes, expected ${BYTE_LENGTH.toLocaleString("en-US")} (truncated or not a bundle)`);
  }
  if (!sameLayout(manifest.tensors)) {
    throw new Error(`manifest tensors do not match the version ${VERSION} layout`);
  }
  const digest = await sha256(bytes);
  if (manifest.sha256 !== digest) {
    throw new Error("embedding.bin does not match the manifest's sha256 (corrupted)");
  }
  const width = manifest.originalWidth, height = manifest.originalHeight;
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new Error("originalWidth/originalHeight must be positive integers");
  }
  const source = sourceOf(manifest);
  // The payload may sit at any byte offset inside a larger buffer: copy once to an aligned one.
  const aligned = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
  const table = halfTable();
  const features = {};
  for (const [name, spec] of Object.entries(LAYOUT)) {
    const count = spec.shape.reduce((a, b) => a * b, 1);
    const half = new Uint16Array(aligned.buffer, aligned.byteOffset + spec.offset, count); // little-endian
    const data = new Float32Array(count);
    for (let i = 0; i < count; i++) data[i] = table[half[i]];
    features[name] = { data, dims: spec.shape.slice() };
  }
  return Object.freeze({
    width,
    height,
    inputSize: manifest.inputSize ?? INPUT_SIZE,
    model: manifest.model ?? {},
    provider: manifest.provider ?? "unknown",
    sha256: digest,
    source,
    features,
  });
}

/**
 * Is `photo` the one `bundle` was encoded from? Resolves when it is; rejects with one sentence when not.
 * Its upright size must be the bundle's; and where the bundle records its photo (`source.sha256`) and
 * `photo.bytes` is given, so must the sha256 of its bytes (bundles written before that field: size only).
 * @param {object} bundle what openBundle returned
 * @param {{bytes?: ArrayBuffer|Uint8Array, width: number, height: number}} photo
 */
export async function checkPhoto(bundle, photo) {
  if (photo.width !== bundle.width || photo.height !== bundle.height) {
    throw new Error(`this photo is ${photo.width}×${photo.height} upright, but the bundle was encoded from a ` +
      `${bundle.width}×${bundle.height} photo: open the photo the bundle was made from`);
  }
  if (bundle.source && photo.bytes && await sha256(bytesOf(photo.bytes)) !== bundle.source) {
    throw new Error("this photo is not the one the bundle was encoded from (the bundle records another " +
      "photo's sha256): open the photo the bundle was made from");
  }
}
