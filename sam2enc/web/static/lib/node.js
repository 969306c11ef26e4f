// The package's "." in Node ≥ 20 (the "node" export condition): the browser module, with loadDecoder also
// taking a file path or a file: URL, and onnxruntime-web's Node build by default. Kept apart so that no
// browser bundle meets a `node:` import.
import { readFile } from "node:fs/promises";
import { isAbsolute } from "node:path";
import { pathToFileURL } from "node:url";

import { loadDecoder as load } from "./decoder.js";

export * from "./index.js";

/**
 * loadDecoder (see index.d.ts), where `source` may also be a file path (relative to the working
 * directory) or a file: URL; model.json is read beside it.
 */
export async function loadDecoder(source, options = {}) {
  const ort = options.ort ?? (await import("onnxruntime-web"));
  const url = typeof source === "string" ? fileUrl(source) : source;
  if (!(url instanceof URL) || url.protocol !== "file:") return load(url, { ...options, ort });
  const read = async (file) => new Uint8Array(await readFile(file));
  const bytes = await read(url);
  let { modelInfo } = options;
  if (modelInfo == null) {
    const text = new TextDecoder().decode(await read(new URL("model.json", url)));
    try {
      modelInfo = JSON.parse(text);
    } catch (err) {
      throw new Error(`${url}: model.json is not valid JSON (${err.message})`);
    }
  }
  return load(bytes, { ...options, modelInfo, ort });
}

/** A path (absolute or relative to the working directory) as a file: URL; other URLs as they are. */
function fileUrl(source) {
  if (isAbsolute(source) || !/^[a-z][a-z0-9+.-]*:/i.test(source)) return pathToFileURL(source);
  return new URL(source);
}
