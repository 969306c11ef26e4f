// A folder of photos and the bundles `sam2enc encode` wrote anywhere inside it, as one dataset.
// DOM-free (tested with `node --test`): the page lists the folder's files (an <input webkitdirectory>
// or the File System Access API), this module pairs each photo with its bundle, says why a photo has
// none, and decides what Next and Previous open and what to read ahead.
//
// A bundle is a folder holding manifest.json and embedding.bin. It pairs with the photo whose bytes it
// records (`source.sha256`, bundle format version 1); a bundle written before that field pairs by
// name — its folder is named after the photo's stem, as `encode --out DIR` names it — and its size is
// checked when it is opened. Nothing is opened or verified here: the worker does that, ahead of time.
import { FORMAT } from "../lib/layout.js";

/** File names a photo may have (what the encoder reads; the page decodes what the browser can). */
export const PHOTO = /\.(jpe?g|png|webp|gif|bmp|tiff?|avif|heic|heif)$/i;

/** The path of `file` inside the opened folder ("a/b.jpg"), without the folder's own name. */
export function relativePath(file) {
  const path = file.webkitRelativePath || file.name;
  const parts = path.split("/");
  return parts.length > 1 ? parts.slice(1).join("/") : path;
}

const parent = (path) => path.split("/").slice(0, -1).join("/");
const stem = (path) => path.split("/").pop().replace(/\.[^.]*$/, "");
const folderName = (dir) => dir.split("/").pop();

/**
 * The dataset in a folder listing.
 * @param {File[]} files every file under the folder (webkitRelativePath set, or `path` given)
 * @param {{hash: (file: File) => Promise<string>, progress?: (done: number, total: number) => void}} how
 *   `hash`: the hex sha256 of a file's bytes; `progress`: called after each photo is read
 * @returns {Promise<{root: string, photos: object[], strays: object[]}>} `photos` in path order, each
 *   `{path, file, sha256, bundle: {dir, manifest, payload} | null, state: "ready"|"missing"|"refused",
 *   why}`; `strays`: bundles that pair with no photo here, and why.
 */
export async function indexFolder(files, { hash, progress = () => {} }) {
  const root = (files[0]?.webkitRelativePath || "").split("/")[0] || "folder";
  const byPath = new Map(files.map((file) => [file.path ?? relativePath(file), file]));
  const photos = [...byPath].filter(([path]) => PHOTO.test(path) && !path.split("/").some((p) => p.startsWith(".")))
    .sort(([a], [b]) => a.localeCompare(b, "en"))
    .map(([path, file]) => ({ path, file, sha256: null, bundle: null, state: "missing", why: "no bundle in the folder" }));
  for (const [i, photo] of photos.entries()) {
    photo.sha256 = await hash(photo.file);
    progress(i + 1, photos.length);
  }
  const strays = [];
  for (const [path, file] of byPath) {
    if (path.split("/").pop() !== "manifest.json") continue;
    const dir = parent(path);
    const found = await readBundle(dir, file, byPath.get(dir ? `${dir}/embedding.bin` : "embedding.bin"));
    if (found.error) { strays.push({ dir, why: found.error }); continue; }
    const match = pair(found, photos);
    if (!match.photo) { strays.push({ dir, why: match.why }); continue; }
    if (match.photo.bundle) { strays.push({ dir, why: `${match.photo.path} already has the bundle in ${match.photo.bundle.dir || "."}` }); continue; }
    match.photo.bundle = found;
    Object.assign(match.photo, { state: "ready", why: "" });
  }
  return { root, photos, strays };
}

async function readBundle(dir, manifestFile, payload) {
  const where = dir || "the folder itself";
  let manifest;
  try {
    manifest = JSON.parse(await manifestFile.text());
  } catch {
    return { error: `${where}: manifest.json is not valid JSON` };
  }
  if (manifest?.format !== FORMAT) return { error: `${where}: manifest.json does not describe a sam2enc bundle` };
  if (!payload) return { error: `${where}: manifest.json has no embedding.bin beside it` };
  return { dir, manifest, payload };
}

/** The photo a bundle was encoded from: by the sha256 it records, else by its folder's name. */
function pair(bundle, photos) {
  const recorded = bundle.manifest.source?.sha256;
  if (recorded) {
    const photo = photos.find((p) => p.sha256 === recorded);
    return photo ? { photo } : { why: `${bundle.dir || "."}: its photo (sha256 ${recorded.slice(0, 12)}…) is not in this folder` };
  }
  const named = photos.filter((p) => stem(p.path) === folderName(bundle.dir) && !p.bundle);
  const near = named.filter((p) => parent(p.path) === parent(bundle.dir));
  const chosen = named.length === 1 ? named : near;
  if (chosen.length === 1) return { photo: chosen[0] };
  return { why: named.length ? `${bundle.dir}: several photos are named ${folderName(bundle.dir)} and the bundle does not record which`
    : `${bundle.dir || "."}: no photo named ${folderName(bundle.dir) || "like it"} (an older bundle pairs by its folder's name)` };
}

/** The index `step` photos on from `at` (Next 1, Previous -1), or -1 past either end. */
export function step(dataset, at, by) {
  const next = at + by;
  return next >= 0 && next < dataset.photos.length ? next : -1;
}

/** The photos worth reading ahead from `at`: the next one, then the one before, that have a bundle. */
export function ahead(dataset, at) {
  return [at + 1, at - 1, at + 2].filter((i) => i >= 0 && i < dataset.photos.length && i !== at)
    .map((i) => dataset.photos[i]).filter((p) => p.state === "ready");
}

/** One line per state, for the dataset's summary: "3 photos: 2 with a bundle, 1 without". */
export function summary(dataset) {
  const count = (state) => dataset.photos.filter((p) => p.state === state).length;
  const n = dataset.photos.length;
  const parts = [`${count("ready")} with a bundle`, count("missing") && `${count("missing")} without`,
    count("refused") && `${count("refused")} refused`].filter(Boolean);
  return `${n} photo${n === 1 ? "" : "s"}: ${parts.join(", ")}`;
}

/** A photo's bundle failed its checks when opened: it stays listed, refused, with the reason. */
export function refuse(photo, why) {
  Object.assign(photo, { state: "refused", why });
}
