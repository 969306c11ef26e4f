// Dataset mode on the page: "Open folder", the list of its photos, Next/Previous with the next photo's
// bundle read ahead in the worker, each photo's work saved as it is made, one COCO for the folder. The
// decisions are DOM-free (app/dataset.js pairs and orders, objects.js records, store.js keeps); this
// module wires them to the panel and to the page's own functions (`page`, from main.js).
import { cocoDataset } from "../lib/coco.js";
import { ahead, indexFolder, refuse, step, summary } from "./dataset.js";
import { decodePhoto } from "./files.js";
import { annotated, createObjects, fromRecord, toRecord } from "./objects.js";
import { openStore } from "./store.js";

const $ = (id) => document.getElementById(id);
const PHOTOS_KEPT = 3; // decoded photos kept for Next/Previous (a 12 MP bitmap is ~48 MB)
const AHEAD = new URLSearchParams(location.search).get("ahead") !== "0"; // ?ahead=0: no read-ahead (bench)

async function sha256Hex(file) {
  const bytes = await file.arrayBuffer();
  const digest = crypto.subtle ? new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))
    : (await import("../lib/sha256.js")).sha256(new Uint8Array(bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * @param {object} page what main.js lends: S, post, request, setStatus, fail, retireAll, showPhoto,
 *   goLive(photo, message, fileName), restored(), decoderModel(), offerEncode(file, photo), save(blob, name)
 */
export function setupDataset(page) {
  const { S } = page;
  let dataset = null, at = -1;
  const photos = new Map(); // path → Promise<ImageBitmap>, least recently used first
  const verdicts = new Map(); // photo sha256 → Promise<{error?}>: the worker's answer to a prefetch
  const answers = new Map(); // photo sha256 → resolve
  const answered = new Set(); // photo sha256s whose bundle the worker holds, verified (bench, tests)
  const storeReady = openStore();
  let store = null; // the store once open: saving then starts its write at once, in the same task
  storeReady.then((s) => { store = s; });

  function photoOf(entry) {
    let bitmap = photos.get(entry.path);
    photos.delete(entry.path);
    if (!bitmap) bitmap = decodePhoto(entry.file);
    photos.set(entry.path, bitmap);
    for (const [path, old] of photos) {
      if (photos.size <= PHOTOS_KEPT) break;
      photos.delete(path);
      old.then((b) => { if (b !== S.photo) b.close(); }, () => {});
    }
    return bitmap;
  }

  /** What the worker needs to open an entry's bundle (its files are handles: nothing is read here). */
  async function bundleMessage(entry) {
    const photo = await photoOf(entry);
    return { key: keyOf(entry), manifest: entry.bundle.manifest, payload: entry.bundle.payload,
      photo: { width: photo.width, height: photo.height }, photoFile: entry.file, model: await page.decoderModel() };
  }

  /** The worker's name for an entry's bundle: its photo's sha256 and where the bundle came from. */
  const keyOf = (entry) => `${entry.sha256}:${entry.bundle.dir}`;

  /** Read an entry's photo and bundle ahead: decoded, verified and converted before it is asked for. */
  function prefetch(entry) {
    const key = keyOf(entry);
    if (!verdicts.has(key)) {
      verdicts.set(key, new Promise((resolve) => {
        answers.set(key, resolve);
        bundleMessage(entry).then((m) => page.post({ type: "prefetch", ...m }), (err) => resolve({ error: err.message }));
      }));
    }
    return verdicts.get(key);
  }

  /** The worker's "prefetched" message. */
  function prefetched(data) {
    if (!data.error) answered.add(data.key);
    answers.get(data.key)?.(data);
    answers.delete(data.key);
  }

  async function open(files) {
    const pick = ++S.picks;
    page.setStatus(`Reading the folder: ${files.length} files…`, "loading");
    try {
      const progress = (done, total) => {
        if (pick === S.picks) page.setStatus(`Reading the folder: ${done} of ${total} photos…`, "loading");
      };
      const found = await indexFolder(files, { hash: sha256Hex, progress });
      if (pick !== S.picks) return;
      if (!found.photos.length) throw new Error(`The folder ${found.root} holds no photos (JPEG, PNG, WebP, …).`);
      dataset = found;
      photos.clear();
      verdicts.clear();
      $("dataset-box").hidden = false;
      document.body.classList.add("dataset"); // Previous/Next and the dataset's COCO appear in the bar
      const kept = await storeReady;
      $("dataset-status").textContent = kept.persistent ? ""
        : `${kept.why[0].toUpperCase()}${kept.why.slice(1)}: download the dataset's COCO before you close this page.`;
      $("dataset-name").textContent = found.root;
      await go(0, pick);
    } catch (err) {
      if (pick === S.picks) page.fail(err);
    }
  }

  /** Open photo `index`: live when its bundle is good, shown with the reason when it has none. */
  async function go(index, pick = ++S.picks) {
    const entry = dataset.photos[index];
    performance.mark("sam2enc:open-photo");
    // At once, before anything is awaited: the photo being left keeps its work (the write starts now),
    // and takes no more prompts — a click from here on says "wait for Ready", never lands on it.
    save();
    const leaving = { gen: S.gen, ready: S.ready };
    Object.assign(S, { ready: false, loading: S.gen });
    page.setStatus(`Opening ${entry.path} (${index + 1} of ${dataset.photos.length})…`, "loading");
    try {
      const photo = await photoOf(entry);
      const verdict = entry.state === "ready" ? await prefetch(entry) : null;
      if (pick !== S.picks) return;
      if (verdict?.error) refuse(entry, verdict.error);
      at = index;
      if (entry.state === "ready") {
        const record = (await (await storeReady).load(entry.sha256)) ?? null;
        if (pick !== S.picks) return;
        page.goLive(photo, { ...(await bundleMessage(entry)) }, entry.path);
        S.objects = (record && fromRecord(record)) ?? createObjects();
        S.dataset = { key: entry.sha256 };
        page.restored();
      } else {
        page.retireAll();
        page.showPhoto(photo);
        S.fileName = entry.path;
        const why = entry.state === "refused" ? `its bundle was refused: ${entry.why.replace(/\.$/, "")}` : "it has no bundle in this folder yet";
        page.setStatus(`${entry.path} (${index + 1} of ${dataset.photos.length}): ${why}. Encode it with \`sam2enc encode\` and open the folder again${$("remote-box").hidden ? "" : ", or press Encode to send it to Replicate"}.`, entry.state === "refused" ? "error" : "idle");
        page.offerEncode(entry.file, photo);
      }
      render();
      if (AHEAD) for (const next of ahead(dataset, index)) prefetch(next);
    } catch (err) {
      if (pick !== S.picks) return;
      if (S.gen === leaving.gen) Object.assign(S, { ready: leaving.ready, loading: null }); // still the old photo
      page.fail(err);
    }
  }

  /**
   * A photo of the folder was encoded on Replicate (Encode, offered on a photo without a bundle): the new
   * bundle becomes that photo's, and the photo opens as any other of the folder (its saved work back).
   * False when the photo is not the folder's: the page then opens it on its own.
   */
  function encoded(file, saved) {
    const index = dataset ? dataset.photos.findIndex((p) => p.file === file) : -1;
    if (index < 0) return false;
    const entry = dataset.photos[index];
    entry.bundle = { dir: "(encoded on Replicate)", manifest: JSON.parse(new TextDecoder().decode(saved.manifest)),
      payload: new Blob([saved.payload]) };
    Object.assign(entry, { state: "ready", why: "" });
    go(index).then(() => { S.saved = saved; page.restored(); });
    return true;
  }

  /** Keep the live photo's objects: written as they change, so that a reload finds them. */
  async function save() {
    if (!dataset || at < 0 || !S.dataset || dataset.photos[at].sha256 !== S.dataset.key) return;
    (store ?? (await storeReady)).save(S.dataset.key, toRecord(S.objects));
  }

  function render() {
    $("dataset-summary").textContent = `${summary(dataset)}. Photo ${at + 1} of ${dataset.photos.length}.`;
    $("dataset-list").replaceChildren(...dataset.photos.map((entry, i) => {
      const item = document.createElement("li");
      const button = Object.assign(document.createElement("button"), { type: "button", textContent: entry.path });
      button.setAttribute("aria-current", String(i === at));
      button.addEventListener("click", () => go(i));
      const note = { ready: "bundle ready", missing: "no bundle", refused: `refused: ${entry.why}` }[entry.state];
      item.append(button, Object.assign(document.createElement("small"), { textContent: ` ${note}` }));
      item.dataset.state = entry.state;
      return item;
    }));
    $("prev-photo").disabled = step(dataset, at, -1) < 0;
    $("next-photo").disabled = step(dataset, at, 1) < 0;
  }

  function move(by) {
    const index = dataset ? step(dataset, at, by) : -1;
    if (index >= 0) go(index);
  }

  /** Every photo of the folder in one COCO document; each mask decoded at the photo's size. */
  async function exportCoco() {
    if (!dataset) throw new Error("Open a folder first.");
    await save();
    const store = await storeReady;
    await store.flush();
    const images = [];
    for (const entry of dataset.photos) {
      const live = S.dataset?.key === entry.sha256 && entry === dataset.photos[at];
      const objects = live ? S.objects : fromRecord(await store.load(entry.sha256));
      const chosen = objects ? annotated(objects) : [];
      if (chosen.length && entry.state !== "ready") throw new Error(`${entry.path} has prompts but no usable bundle (${entry.why}).`);
      const photo = await photoOf(entry);
      const masks = [];
      for (const o of chosen) {
        const message = await bundleMessage(entry);
        masks.push(await page.request({ type: "export", ...message, points: o.prompts.points.map((p) => [...p]), box: o.prompts.box && [...o.prompts.box] }));
      }
      images.push({ fileName: entry.path, width: photo.width, height: photo.height, sha256: entry.sha256,
        objects: chosen.map((o, i) => ({ label: o.label, mask: masks[i].mask, points: masks[i].points, box: masks[i].box })) });
    }
    return cocoDataset(images);
  }

  async function forget() {
    if (!dataset) return;
    const n = await (await storeReady).forget(dataset.photos.map((p) => p.sha256));
    $("dataset-status").textContent = `Forgot the saved work of ${n} photo${n === 1 ? "" : "s"} in ${dataset.root}.`;
    S.dataset = null; // the live photo's objects are not saved again on the way out
    if (at >= 0) await go(at);
  }

  $("folder").addEventListener("change", () => { if ($("folder").files.length) open([...$("folder").files]); $("folder").value = ""; });
  $("prev-photo").addEventListener("click", () => move(-1));
  $("next-photo").addEventListener("click", () => move(1));
  $("forget-dataset").addEventListener("click", () => forget().catch(page.fail));
  $("download-coco-dataset").addEventListener("click", async () => {
    try {
      $("dataset-status").textContent = "Decoding every photo's masks at full size…";
      const document = await exportCoco();
      page.save(new Blob([JSON.stringify(document)], { type: "application/json" }), `${dataset.root}.coco.json`);
      $("dataset-status").textContent = `Wrote ${document.images.length} photos and ${document.annotations.length} annotations to ${dataset.root}.coco.json.`;
    } catch (err) {
      $("dataset-status").textContent = "";
      page.fail(err);
    }
  });
  document.addEventListener("keydown", (e) => {
    if (!dataset || e.ctrlKey || e.metaKey || e.altKey || (e.target instanceof HTMLInputElement && ["text", "password"].includes(e.target.type))) return;
    if (e.key === "PageDown") { e.preventDefault(); move(1); } else if (e.key === "PageUp") { e.preventDefault(); move(-1); }
  });

  return {
    prefetched, changed: save,
    /** Whether the photo at `path` has been read ahead: its bundle verified and waiting in the worker. */
    readAhead: (path) => Boolean(dataset?.photos.some((p) => p.path === path && p.bundle && answered.has(keyOf(p)))),
    encoded,
  };
}
