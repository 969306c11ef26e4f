// Photos and bundles from disk, the demo or Replicate: recognised by content, checked in full (the
// module's openBundle, the photo's size, the decoder's model) before anything on screen changes.
import { checkPhoto, openBundle } from "../lib/index.js";
import { modelMismatch, sameModel } from "../lib/decoder.js";
import { BYTE_LENGTH, FORMAT } from "../lib/layout.js";

/** The module's messages as sentences: a capital (unless they start with a file name) and a full stop. */
function sentence(text) {
  const start = /^[\w-]+\.[a-z]+\b/.test(text) ? text : `${text[0].toUpperCase()}${text.slice(1)}`;
  return /[.!?]$/.test(start) ? start : `${start}.`;
}

/** Recognise photo, embedding.bin and manifest.json by their bytes (renamed copies work). */
export async function classify(files) {
  const found = { photos: [], payloads: [], manifests: [], unknown: [] };
  for (const file of files) {
    const head = new Uint8Array(await file.slice(0, 16).arrayBuffer());
    const ascii = String.fromCharCode(...head);
    const image = (head[0] === 0xff && head[1] === 0xd8) || ascii.startsWith("\x89PNG") || ascii.startsWith("GIF8")
      || (ascii.startsWith("RIFF") && ascii.slice(8, 12) === "WEBP") || ascii.slice(4, 8) === "ftyp"
      || ascii.startsWith("II*\0") || ascii.startsWith("MM\0*") || ascii.startsWith("BM");
    if (image) found.photos.push(file);
    else if (file.size === BYTE_LENGTH || /\.bin$/i.test(file.name)) found.payloads.push(file);
    else if (file.size < 1e6 && ascii.trimStart().startsWith("{")) {
      try {
        const json = JSON.parse(await file.text());
        if (json.format === FORMAT) found.manifests.push({ file, json });
        else found.unknown.push(file.name);
      } catch { found.unknown.push(file.name); }
    } else found.unknown.push(file.name);
  }
  const names = (list) => list.map((f) => f.file?.name ?? f.name).join(", ");
  for (const [list, what] of [[found.photos, "photo"], [found.payloads, "embedding.bin"], [found.manifests, "manifest.json"]]) {
    if (list.length > 1) throw new Error(`Open one ${what} at a time: this selection has ${list.length} (${names(list)}).`);
  }
  const result = { photo: found.photos[0], payload: found.payloads[0], manifest: found.manifests[0]?.json };
  const missing = [!result.photo && "the photo", !result.payload && "embedding.bin", !result.manifest && "manifest.json"].filter(Boolean);
  if (missing.length) {
    const extra = found.unknown.length ? ` (not recognised: ${found.unknown.join(", ")})` : "";
    const listed = missing.length > 1 ? `${missing.slice(0, -1).join(", ")} and ${missing.at(-1)}` : missing[0];
    throw new Error(`Open the photo, embedding.bin and manifest.json together: missing ${listed}${extra}.`);
  }
  return result;
}

/** The photo upright (EXIF applied), as the encoder saw it. */
export async function decodePhoto(blob) {
  try {
    return await createImageBitmap(blob, { imageOrientation: "from-image" });
  } catch {
    throw new Error("The photo could not be decoded by this browser.");
  }
}

/**
 * A bundle checked by the module (format, layout, size, sha256), against the photo (the sha256 of its
 * bytes, `photoBlob`, where the manifest records it; else its upright size) and against the model whose
 * decoder this page serves (`model`: the manifest-style identity of model.json).
 */
export async function checkedBundle(manifest, payload, photo, model, photoBlob) {
  let bundle;
  try {
    bundle = await openBundle(manifest, payload);
    if (photo) {
      const bytes = photoBlob && bundle.source ? await photoBlob.arrayBuffer() : undefined;
      await checkPhoto(bundle, { bytes, width: photo.width, height: photo.height });
    }
  } catch (err) {
    throw new Error(sentence(err.message));
  }
  if (model && !sameModel(bundle.model, model)) throw new Error(sentence(modelMismatch(bundle.model, model)));
  return bundle;
}
