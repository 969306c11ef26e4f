// The page: a photo and its bundle in (demo, disk or Replicate), prompts to the decoder worker, the mask
// on screen at display resolution, full resolution only for export.
//
// Consistency rules: every bundle has a generation (`gen`), every edit of the prompts a generation
// (`promptGen`); each decode result carries both and is dropped when either has moved on. A new photo
// or bundle retires the old one at once; prompts are refused until the decoder says Ready.
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const POLL_MS = Number(params.get("poll") || 1000);
const BACKEND = params.get("backend") || "auto";
const workerUrl = `/static/worker.js?backend=${BACKEND}${params.get("delay") ? `&delay=${params.get("delay")}` : ""}`;
const worker = new Worker(workerUrl, { type: "module" });
const BUNDLE_BYTES = 8388608;
const MARKER = 7; // CSS px radius of a prompt marker
const HIT = 10; // CSS px: a click this close to a marker deletes it

const S = {
  gen: 0, promptGen: 0, ready: false, width: 0, height: 0, photo: null, source: null, saved: null,
  points: [], box: null, history: [], drag: null, hover: null, cursor: null,
  inflight: null, pending: null, nextId: 1, exports: new Map(),
  seq: 0, dropped: 0, last: null, shown: false, timings: [], backend: null, view: "overlay",
  display: { cssW: 0, cssH: 0, w: 0, h: 0, dpr: 1 }, randomModels: false, encode: null,
  picks: 0, loading: null, readyText: "", encodePhoto: null,
};
// The documented test hook: current prompts in photo pixels ([x, y, label]) and box; nothing secret.
window.sam2enc = {
  get points() { return S.points.map((p) => [...p]); },
  get box() { return S.box && [...S.box]; },
  get ready() { return S.ready; },
  get gen() { return S.gen; },
  get promptGen() { return S.promptGen; },
  get seq() { return S.seq; },
  get dropped() { return S.dropped; },
  get last() { return S.last; },
  get shown() { return S.shown; },
  get dragging() { return Boolean(S.drag); },
  get timings() { return S.timings; },
  get backend() { return S.backend; },
  get size() { return [S.width, S.height]; },
  get display() { return { ...S.display }; },
  idle: () => !S.inflight && !S.pending,
  // The mask on screen, one byte (0/1) per pixel of the display-size mask (the photo's own size
  // whenever the photo fits the window), base64: what the page shows, for tests.
  maskBase64: () => {
    const rgba = S.lastMask ?? new Uint32Array(0);
    const bytes = Uint8Array.from(rgba, (v) => (v ? 1 : 0));
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(text);
  },
};

function setStatus(text, kind) {
  $("status").textContent = text;
  $("status").dataset.state = kind;
}
const fail = (err) => setStatus(String(err.message || err), "error");

// --- bundles and photos: retire at once, verify, then load ------------------------------------------
function retire() {
  abandonEncode(true);
  S.encodeFile = null;
  S.gen += 1;
  S.ready = false;
  S.photo = null;
  S.saved = null;
  S.points = [];
  S.box = null;
  S.history = [];
  S.drag = null;
  S.hover = null;
  S.cursor = null;
  S.maskImage = null;
  S.shown = false;
  S.lastMask = null;
  S.last = null;
  bumpPrompts();
  S.width = S.height = 0;
  S.loading = null;
  worker.postMessage({ type: "retire", gen: S.gen });
  for (const id of ["photo-canvas", "mask-layer", "mask-canvas"]) $(id).width = $(id).height = 0;
  $("timing").textContent = "";
  updateButtons();
  return S.gen;
}

// The checks sam2enc/bundle.py makes: format, version, layout, size and sha256.
const LAYOUT = { image_embed: [0, [1, 256, 64, 64]], high_res_feats_0: [2097152, [1, 32, 256, 256]], high_res_feats_1: [6291456, [1, 64, 128, 128]] };
async function verifyBundle(manifest, payload) {
  if (manifest?.format !== "sam2enc-bundle" || manifest.version !== 1) throw new Error("manifest.json is not a version 1 sam2enc bundle.");
  for (const [name, [offset, shape]] of Object.entries(LAYOUT)) {
    const spec = manifest.tensors?.[name];
    if (!spec || spec.offset !== offset || spec.dtype !== "float16" || String(spec.shape) !== String(shape)) {
      throw new Error(`The bundle's ${name} does not have the version 1 layout.`);
    }
  }
  if (!(manifest.originalWidth > 0 && manifest.originalHeight > 0)) throw new Error("manifest.json has no photo size.");
  if (payload.byteLength !== BUNDLE_BYTES || payload.byteLength !== manifest.byteLength) {
    throw new Error(`embedding.bin has ${payload.byteLength} bytes; a version 1 bundle has ${BUNDLE_BYTES}.`);
  }
  if (crypto.subtle) { // only in a secure context (localhost counts); elsewhere the size check must do
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", payload));
    const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
    if (hex !== manifest.sha256) throw new Error("embedding.bin does not match the manifest's sha256: the file is corrupted or belongs to another manifest.");
  }
}

async function decodePhoto(blob) {
  try {
    return await createImageBitmap(blob, { imageOrientation: "from-image" }); // EXIF applied: upright
  } catch {
    throw new Error("The photo could not be decoded by this browser.");
  }
}

function checkSize(photo, manifest) {
  if (photo.width !== manifest.originalWidth || photo.height !== manifest.originalHeight) {
    throw new Error(`This photo is ${photo.width}×${photo.height} upright, but the bundle was encoded from a ` +
      `${manifest.originalWidth}×${manifest.originalHeight} photo: open the photo the bundle was made from.`);
  }
}

function showPhoto(photo) {
  S.photo = photo;
  S.width = photo.width;
  S.height = photo.height;
  layout();
}

function loadBundle(gen, manifest, payload, source) {
  if (gen !== S.gen) return;
  S.source = source;
  S.loading = gen;
  setStatus("Loading the decoder…", "loading");
  worker.postMessage({ type: "bundle", gen, manifest, payload }, [payload]);
}

// One picker (and drop target) for photo + embedding.bin + manifest.json, recognised by content: a
// browser's renamed copies ("embedding (1).bin") work as well as the originals.
async function classify(files) {
  const found = { photos: [], payloads: [], manifests: [], unknown: [] };
  for (const file of files) {
    const head = new Uint8Array(await file.slice(0, 16).arrayBuffer());
    const ascii = String.fromCharCode(...head);
    const image = (head[0] === 0xff && head[1] === 0xd8) || ascii.startsWith("\x89PNG") || ascii.startsWith("GIF8")
      || (ascii.startsWith("RIFF") && ascii.slice(8, 12) === "WEBP") || ascii.slice(4, 8) === "ftyp"
      || ascii.startsWith("II*\0") || ascii.startsWith("MM\0*");
    if (image) found.photos.push(file);
    else if (file.size === BUNDLE_BYTES || /\.bin$/i.test(file.name)) found.payloads.push(file);
    else if (ascii.startsWith("BM")) found.photos.push(file);
    else if (file.size < 1e6 && ascii.trimStart().startsWith("{")) {
      try {
        const json = JSON.parse(await file.text());
        if (json.format === "sam2enc-bundle") found.manifests.push({ file, json });
        else found.unknown.push(file.name);
      } catch { found.unknown.push(file.name); }
    } else found.unknown.push(file.name);
  }
  const names = (list) => list.map((f) => f.file?.name ?? f.name).join(", ");
  for (const [list, what] of [[found.photos, "photo"], [found.payloads, "embedding.bin"], [found.manifests, "manifest.json"]]) {
    if (list.length > 1) throw new Error(`Open one ${what} at a time: this selection has ${list.length} (${names(list)}).`);
  }
  return { photo: found.photos[0], payload: found.payloads[0], manifest: found.manifests[0]?.json, unknown: found.unknown };
}

// A pick is checked in full before it replaces anything: a bad one leaves the live photo, its bundle
// and its prompts as they were, under a one-sentence error. The newest pick wins a race.
async function openFiles(files) {
  const pick = ++S.picks;
  try {
    const found = await classify(files);
    const missing = [!found.photo && "the photo", !found.payload && "embedding.bin", !found.manifest && "manifest.json"].filter(Boolean);
    if (missing.length) {
      const extra = found.unknown.length ? ` (not recognised: ${found.unknown.join(", ")})` : "";
      throw new Error(`Open the photo, embedding.bin and manifest.json together: missing ${missing.join(" and ")}${extra}.`);
    }
    const payload = await found.payload.arrayBuffer();
    await verifyBundle(found.manifest, payload);
    const photo = await decodePhoto(found.photo);
    checkSize(photo, found.manifest);
    if (pick !== S.picks) return;
    const gen = retire();
    showPhoto(photo);
    loadBundle(gen, found.manifest, payload, "disk");
  } catch (err) {
    if (pick === S.picks) fail(err);
  }
}
$("bundle").addEventListener("change", () => { if ($("bundle").files.length) openFiles([...$("bundle").files]); $("bundle").value = ""; });
document.addEventListener("dragover", (e) => { e.preventDefault(); $("stage").classList.add("dragover"); });
document.addEventListener("dragleave", () => $("stage").classList.remove("dragover"));
document.addEventListener("drop", (e) => {
  e.preventDefault();
  $("stage").classList.remove("dragover");
  if (e.dataTransfer?.files.length) openFiles([...e.dataTransfer.files]);
});

// --- the demo photo: encoded by the server at startup, no token, no network -------------------------
$("demo").addEventListener("click", async () => {
  const pick = ++S.picks;
  try {
    setStatus("Loading the demo photo…", "loading");
    const info = await (await fetch("/demo/info.json")).json();
    if (!info.available) throw new Error(info.reason || "This server has no demo photo.");
    const [photoBlob, payload, manifest] = await Promise.all([
      fetch(info.photo).then((r) => r.blob()), fetch(info.embedding).then((r) => r.arrayBuffer()), fetch(info.manifest).then((r) => r.json())]);
    await verifyBundle(manifest, payload);
    const photo = await decodePhoto(photoBlob);
    checkSize(photo, manifest);
    if (pick !== S.picks) return;
    const gen = retire();
    showPhoto(photo);
    loadBundle(gen, manifest, payload, "demo");
  } catch (err) {
    if (pick === S.picks) fail(err);
  }
});

// --- Replicate, through the local proxy --------------------------------------------------------------
const saved = localStorage.getItem("sam2enc.token");
if (saved) { $("token").value = saved; $("remember").checked = true; }
$("remember").addEventListener("change", () => {
  if ($("remember").checked) localStorage.setItem("sam2enc.token", $("token").value);
  else localStorage.removeItem("sam2enc.token");
});
$("token").addEventListener("input", () => {
  if ($("remember").checked) localStorage.setItem("sam2enc.token", $("token").value);
  encodeHint();
});
$("version").addEventListener("input", encodeHint);
// Choosing the photo sends nothing: the upload (and the model lookup) wait for Encode. With nothing
// live the photo is shown at once; a live photo and its bundle stay until Encode is pressed.
$("photo").addEventListener("change", async () => {
  const file = $("photo").files[0];
  if (!file) return;
  const pick = ++S.picks;
  try {
    const photo = await decodePhoto(file);
    if (pick !== S.picks) return;
    abandonEncode(true);
    if (!S.ready) { retire(); showPhoto(photo); }
    S.encodeFile = file;
    S.encodePhoto = photo;
    remoteStatus("");
    encodeHint(true);
  } catch (err) {
    if (pick === S.picks) fail(err);
  }
});

/** What the user must do to get a bundle for the photo to encode, as the end of a sentence. */
function encodeStep() {
  const missing = [!$("token").value.trim() && "your Replicate API token", !$("version").value.trim() && "the model"].filter(Boolean);
  if (missing.length) return `enter ${missing.join(" and ")}, then press Encode`;
  return $("remote-status").classList.contains("error") ? "press Retry" : "press Encode";
}
function encodeHint(force = false) {
  updateButtons();
  if (!S.encodeFile || S.encode || S.ready) return;
  if (!force && $("status").dataset.state !== "idle") return;
  const step = encodeStep();
  setStatus(`${step[0].toUpperCase()}${step.slice(1)} to send the photo to Replicate.`, "idle");
}
$("encode").addEventListener("click", () => startEncode());
$("retry").addEventListener("click", () => startEncode());
$("cancel").addEventListener("click", () => abandonEncode(true, "Canceled."));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const TERMINAL = ["succeeded", "failed", "canceled", "aborted"];

/** Replicate model field: owner/name, owner/name:version, a version id, or a replicate.com URL. */
export function parseModel(text) {
  const value = text.trim();
  let m = value.match(/^https?:\/\/(?:www\.)?replicate\.com\/([\w.-]+)\/([\w.-]+)(?:\/versions\/(\w+))?\/?(?:[?#].*)?$/i);
  if (m) return m[3] ? { version: m[3] } : { owner: m[1], name: m[2] };
  if ((m = value.match(/^([\w.-]+)\/([\w.-]+):(\w+)$/))) return { version: m[3] };
  if ((m = value.match(/^([\w.-]+)\/([\w.-]+)$/))) return { owner: m[1], name: m[2] };
  if (/^\w{8,}$/.test(value)) return { version: value };
  throw new Error("Give the model as owner/name, owner/name:version, a version id, or its replicate.com URL.");
}

// The proxy marks the answers it makes itself; everything else comes from Replicate.
async function api(path, init = {}, what = "Replicate") {
  for (let attempt = 0; ; attempt++) {
    const headers = { Authorization: `Bearer ${$("token").value.trim()}`, ...(init.headers || {}) };
    if (typeof init.body === "string") headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, { ...init, headers, signal: S.encode?.abort.signal });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new Error("The local proxy could not be reached: is `python -m sam2enc.web serve` still running?");
    }
    const body = await response.json().catch(() => ({}));
    if (response.status === 429 && attempt < 6) { // rate limited: wait as long as Replicate asks
      const wait = Number(response.headers.get("Retry-After")) || 2 ** attempt;
      S.encode && (S.encode.note = `rate limited, retrying in ${wait} s`);
      await sleep(wait * 1000);
      continue;
    }
    if (!response.ok) throw new Error(refusal(response.status, body, what));
    return body;
  }
}

/** One sentence for a refused call: the local proxy's own answers say `"source": "proxy"`. */
export function refusal(status, body, what) {
  const detail = body?.detail || body?.title || `HTTP ${status}`;
  if (body?.source === "proxy" && body.upstream) { // the proxy is fine; what it forwards to is not
    const how = status === 504 ? "did not answer in time" : "could not be reached";
    return `The upstream ${body.upstream} ${how} for ${what} (the local proxy answered ${status}): check the network, or the proxy's --upstream.`;
  }
  return body?.source === "proxy" ? `The local proxy refused ${what} (${status}): ${detail}`
    : `Replicate refused ${what} (${status}): ${detail}`;
}

function abandonEncode(cancelRemote, message) {
  const job = S.encode;
  if (!job) return;
  S.encode = null;
  job.abort.abort();
  clearInterval(job.ticker);
  if (cancelRemote && job.id) fetch(`/api/predictions/${job.id}/cancel`, { method: "POST", headers: { Authorization: `Bearer ${$("token").value.trim()}` } }).catch(() => {});
  if (message) { remoteStatus(message); setStatus(message, "idle"); }
  updateButtons();
}

function remoteStatus(text, error = false) {
  $("remote-status").textContent = text;
  $("remote-status").classList.toggle("error", error);
}

async function startEncode() {
  const file = S.encodeFile;
  if (!file) return fail("Choose a photo to encode first.");
  abandonEncode(true);
  // A new encode retires whatever bundle is live: its clicks must not land on the old embedding.
  const photo = S.encodePhoto;
  S.picks += 1;
  const gen = retire();
  if (photo) showPhoto(photo);
  S.encodeFile = file;
  S.encodePhoto = photo;
  const job = { gen, id: null, status: "uploading", start: performance.now(), abort: new AbortController(), note: "" };
  S.encode = job;
  const tick = () => {
    const seconds = ((performance.now() - job.start) / 1000).toFixed(1);
    remoteStatus(`Encoding on Replicate: ${job.status}${job.note ? ` (${job.note})` : ""} · ${seconds} s`);
    setStatus(`Encoding on Replicate: ${job.status} · ${seconds} s`, "encoding");
  };
  job.ticker = setInterval(tick, 200);
  tick();
  updateButtons();
  const live = () => S.encode === job && S.gen === gen;
  try {
    const model = parseModel($("version").value);
    let version = model.version;
    if (!version) {
      job.status = "looking up the model";
      const info = await api(`/api/models/${model.owner}/${model.name}`, {}, `the model ${model.owner}/${model.name}`);
      version = info.latest_version?.id;
      if (!version) throw new Error(`${model.owner}/${model.name} has no version yet: push one, or give owner/name:version.`);
    }
    if (!live()) return;
    job.status = "uploading the photo";
    const form = new FormData();
    form.append("content", file, file.name || "photo");
    const upload = await api("/api/files", { method: "POST", body: form }, "the photo upload");
    if (!live()) return;
    let prediction = await api("/api/predictions", { method: "POST", body: JSON.stringify({ version, input: { image: upload.urls.get } }) }, "the prediction");
    job.id = prediction.id;
    while (live() && !TERMINAL.includes(prediction.status)) {
      job.status = prediction.status;
      await sleep(POLL_MS);
      if (!live()) return;
      prediction = await api(`/api/predictions/${job.id}`, {}, "the status request");
    }
    if (!live()) return;
    if (prediction.status !== "succeeded") {
      const why = prediction.status === "aborted" ? "its deadline passed before it started" : prediction.error || "no reason given";
      throw new Error(`The prediction ${prediction.status}: ${why}.`);
    }
    job.status = "downloading the bundle";
    const urls = Array.isArray(prediction.output) ? prediction.output : Object.values(prediction.output || {});
    const files = {}; // by file name: Cog lists outputs in upload-completion order
    for (const url of urls) {
      const response = await fetch(`/api/files?url=${encodeURIComponent(url)}`, { headers: { Authorization: `Bearer ${$("token").value.trim()}` }, signal: job.abort.signal });
      if (!response.ok) throw new Error(`Could not download ${url} (${response.status}).`);
      files[new URL(url).pathname.split("/").pop()] = await response.arrayBuffer();
    }
    for (const name of ["embedding.bin", "manifest.json"]) {
      if (!files[name]) throw new Error(`The prediction succeeded but returned no ${name}: the model's upload of that file failed. Retry.`);
    }
    const manifest = JSON.parse(new TextDecoder().decode(files["manifest.json"]));
    const payload = files["embedding.bin"];
    await verifyBundle(manifest, payload);
    checkSize(S.photo, manifest);
    if (!live()) return;
    clearInterval(job.ticker);
    S.encode = null;
    remoteStatus(`Encoded in ${((performance.now() - job.start) / 1000).toFixed(1)} s (prediction ${job.id}).`);
    const copy = payload.slice(0);
    loadBundle(gen, manifest, payload, "remote");
    S.saved = { manifest: files["manifest.json"], payload: copy };
    updateButtons();
  } catch (err) {
    if (S.encode !== job) return; // canceled or replaced: its failure is not news
    clearInterval(job.ticker);
    S.encode = null;
    if (err.name !== "AbortError") { remoteStatus(String(err.message || err), true); fail(err); }
    updateButtons();
  }
}

function updateButtons() {
  const encoding = Boolean(S.encode);
  const canEncode = Boolean(S.encodeFile && $("token").value.trim() && $("version").value.trim());
  $("encode").disabled = encoding || !canEncode;
  $("retry").disabled = encoding || !canEncode || !$("remote-status").classList.contains("error");
  $("cancel").disabled = !encoding;
  const haveMask = S.ready && (S.points.length > 0 || S.box);
  $("download-mask").disabled = !haveMask;
  $("download-cutout").disabled = !haveMask;
  $("save-bundle").disabled = !S.saved;
}

// --- layout: the photo fits the window; masks are computed at display resolution -------------------
function layout() {
  if (!S.photo) return;
  const stage = $("stage");
  const availW = Math.max(120, stage.parentElement.clientWidth);
  const top = stage.getBoundingClientRect().top + window.scrollY;
  const tools = $("tools").offsetHeight + 8; // the prompt tools stay on screen under the photo
  const availH = Math.max(240, window.innerHeight - Math.min(top, window.innerHeight * 0.4) - 12 - tools);
  const scale = Math.min(availW / S.width, availH / S.height, 1);
  const cssW = Math.max(1, Math.floor(S.width * scale)), cssH = Math.max(1, Math.floor(S.height * scale));
  const dpr = window.devicePixelRatio || 1;
  const w = Math.min(S.width, Math.round(cssW * dpr)), h = Math.min(S.height, Math.round(cssH * dpr));
  S.display = { cssW, cssH, w, h, dpr };
  for (const [id, cw, ch] of [["photo-canvas", w, h], ["mask-layer", w, h], ["mask-canvas", Math.round(cssW * dpr), Math.round(cssH * dpr)]]) {
    const c = $(id);
    c.width = cw;
    c.height = ch;
    c.style.width = `${cssW}px`;
    c.style.height = `${cssH}px`;
  }
  const ctx = $("photo-canvas").getContext("2d");
  ctx.fillStyle = "#fff"; // transparency over white, as the encoder composites it
  ctx.fillRect(0, 0, w, h);
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(S.photo, 0, 0, w, h);
  S.maskImage = null;
  S.shown = false; S.lastMask = null;
  render();
  drawUi();
  if (S.ready && (S.points.length || S.box)) schedule("prompt");
}
let resizeTimer = 0;
window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(layout, 100); });

// --- prompts --------------------------------------------------------------------------------------------
function bumpPrompts() {
  S.promptGen += 1;
  S.pending = null; // what was pending is for prompts that no longer exist
}

function edit(change) {
  S.history.push({ points: S.points.map((p) => [...p]), box: S.box && [...S.box] });
  change();
  afterEdit();
}

function afterEdit() {
  bumpPrompts();
  if (S.ready && ["error", "refused"].includes($("status").dataset.state)) setStatus(S.readyText, "ready");
  drawUi();
  updateButtons();
  if (S.points.length || S.box) schedule("prompt");
  else { S.maskImage = null; S.shown = false; S.lastMask = null; S.last = null; render(); }
}

function undo() {
  if (!S.history.length) return;
  const prev = S.history.pop();
  S.points = prev.points;
  S.box = prev.box;
  afterEdit();
}
function clearPrompts() {
  if (!S.points.length && !S.box) return;
  edit(() => { S.points = []; S.box = null; });
}
$("undo").addEventListener("click", undo);
$("clear").addEventListener("click", clearPrompts);

function notReadyReason() {
  if (!S.width) return "there is no photo yet";
  if (S.loading === S.gen) return "the decoder is not ready yet: wait for \u201cReady\u201d";
  if (S.encode) return "the photo is still being encoded on Replicate";
  return `this photo has no bundle yet: ${encodeStep()}`;
}
function refuseIfNotReady() {
  if (S.ready) return false;
  const why = notReadyReason();
  setStatus(`Prompt not placed: ${why}.`, "refused");
  return true;
}

function modeLabel() {
  return Number(document.querySelector("input[name=mode]:checked").value);
}

function toPhoto(event) {
  const rect = $("mask-canvas").getBoundingClientRect();
  const x = ((event.clientX - rect.left) * S.width) / rect.width;
  const y = ((event.clientY - rect.top) * S.height) / rect.height;
  return [Math.min(Math.max(x, 0), S.width), Math.min(Math.max(y, 0), S.height)];
}

function markerAt(event) {
  const rect = $("mask-canvas").getBoundingClientRect();
  const k = rect.width / S.width;
  const px = event.clientX - rect.left, py = event.clientY - rect.top;
  let found = -1, bestD = HIT;
  S.points.forEach(([x, y], i) => {
    const d = Math.hypot(x * k - px, y * k - py);
    if (d <= bestD) { bestD = d; found = i; }
  });
  return found;
}

const ui = $("mask-canvas");
ui.addEventListener("contextmenu", (e) => e.preventDefault()); // right-click excludes; no menu
ui.addEventListener("pointerdown", (e) => {
  if (e.button !== 0 && e.button !== 2) return;
  e.preventDefault();
  ui.focus({ preventScroll: true });
  if (S.cursor) { S.cursor = null; drawUi(); } // the pointer is in use: no keyboard cursor
  if (refuseIfNotReady()) return;
  ui.setPointerCapture(e.pointerId);
  S.hover = null;
  S.drag = { id: e.pointerId, start: toPhoto(e), client: [e.clientX, e.clientY], button: e.button, shift: e.shiftKey, moved: false };
});
ui.addEventListener("pointermove", (e) => {
  if (S.drag && e.pointerId === S.drag.id) {
    if (S.drag.button !== 0) return;
    if (!S.drag.moved && Math.hypot(e.clientX - S.drag.client[0], e.clientY - S.drag.client[1]) < 6) return;
    S.drag.moved = true;
    S.drag.box = boxFrom(S.drag.start, toPhoto(e));
    drawUi();
    schedule("drag"); // the mask follows the box while it is drawn
  } else if (!S.drag && e.pointerType === "mouse" && $("hover").checked && S.ready) {
    S.hover = [...toPhoto(e), modeLabel()];
    schedule("hover");
  }
});
function finishDrag(e, commit) {
  const drag = S.drag;
  if (!drag || e.pointerId !== drag.id) return;
  S.drag = null;
  if (ui.hasPointerCapture(e.pointerId)) ui.releasePointerCapture(e.pointerId);
  if (!commit) { drawUi(); return; }
  if (drag.moved) {
    const box = boxFrom(drag.start, toPhoto(e));
    if (box[2] - box[0] >= 1 && box[3] - box[1] >= 1) edit(() => { S.box = box; });
    else afterEdit();
    return;
  }
  const hit = markerAt(e);
  if (hit >= 0) return edit(() => { S.points.splice(hit, 1); });
  const label = drag.button === 2 || drag.shift || e.shiftKey ? 0 : modeLabel();
  const [x, y] = toPhoto(e);
  edit(() => { S.points.push([x, y, label]); });
}
ui.addEventListener("pointerup", (e) => finishDrag(e, true));
ui.addEventListener("pointercancel", (e) => finishDrag(e, false));
ui.addEventListener("lostpointercapture", (e) => finishDrag(e, true)); // released outside the window
ui.addEventListener("pointerleave", () => {
  if (S.hover) { S.hover = null; S.pending = null; if (S.points.length || S.box) schedule("prompt"); else { S.maskImage = null; S.shown = false; S.lastMask = null; render(); } }
});
function boxFrom([x0, y0], [x1, y1]) {
  return [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)];
}

// Keyboard: the focused photo has a cursor; arrows move it, Enter includes, Shift+Enter excludes.
ui.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && refuseIfNotReady()) { e.preventDefault(); return; }
  if (!S.width) return;
  const steps = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
  if (!steps[e.key] && e.key !== "Enter") return; // Shift, Ctrl, …: no keyboard cursor for them
  if (!S.cursor) S.cursor = [S.width / 2, S.height / 2];
  if (steps[e.key]) {
    e.preventDefault();
    const step = e.altKey ? 1 : Math.max(1, Math.round(Math.max(S.width, S.height) / 50));
    S.cursor = [Math.min(Math.max(S.cursor[0] + steps[e.key][0] * step, 0), S.width), Math.min(Math.max(S.cursor[1] + steps[e.key][1] * step, 0), S.height)];
    drawUi();
  } else if (e.key === "Enter") {
    e.preventDefault();
    if (refuseIfNotReady()) return;
    const label = e.shiftKey ? 0 : modeLabel();
    edit(() => { S.points.push([S.cursor[0], S.cursor[1], label]); });
  }
});
ui.addEventListener("focus", drawUi);
ui.addEventListener("blur", drawUi);
document.addEventListener("keydown", (e) => {
  const typing = e.target instanceof HTMLInputElement && ["text", "password"].includes(e.target.type);
  if (typing) return;
  if ((e.ctrlKey || e.metaKey) && !e.shiftKey && e.key.toLowerCase() === "z") { e.preventDefault(); undo(); }
  else if (e.key === "Escape") { e.preventDefault(); clearPrompts(); }
});

// --- decoding: one request in flight, the newest waiting, at most one send per animation frame --------
function schedule(kind) {
  if (!S.ready) return;
  const hover = kind === "hover" && S.hover;
  const box = S.drag?.box || S.box;
  const points = S.points.map((p) => [...p]);
  if (hover) points.push([...S.hover]);
  if (!points.length && !box) return;
  S.pending = { kind, points, box: box && [...box], gen: S.gen, promptGen: S.promptGen, created: performance.now() };
  requestAnimationFrame(flush);
}

function flush() {
  if (S.inflight || !S.pending) return;
  const request = { ...S.pending, id: S.nextId++, type: "decode", display: [S.display.w, S.display.h] };
  S.pending = null;
  S.inflight = request;
  worker.postMessage(request);
}

const current = (data) => data.gen === S.gen && data.promptGen === S.promptGen;

worker.onmessage = ({ data }) => {
  if (data.type === "ready") {
    if (data.gen !== S.gen) return;
    S.ready = true;
    S.backend = data.backend;
    const threads = data.backend === "wasm" ? `, ${data.threads} thread${data.threads > 1 ? "s" : ""}` : "";
    const how = matchMedia("(pointer: coarse)").matches ? "Tap the photo (Include/Exclude under it), drag for a box."
      : "Click the photo to include, right-click to exclude, drag for a box.";
    S.loading = null;
    S.readyText = `Ready (${data.backend}${threads}). ${how}`;
    setStatus(S.readyText, "ready");
    $("timing").textContent = `decoder warm-up ${data.warmupMs.toFixed(0)} ms`;
    notices(data);
    layout(); // the notices may have moved the photo down: fit it again
    updateButtons();
    return;
  }
  if (data.type === "export") {
    const done = S.exports.get(data.id);
    S.exports.delete(data.id);
    done?.(data);
    return;
  }
  const sent = data.id && S.inflight?.id === data.id ? S.inflight : null;
  if (sent) S.inflight = null;
  if (data.type === "error") {
    const waiting = S.exports.get(data.id);
    if (waiting) { S.exports.delete(data.id); waiting(data); }
    if (data.gen === S.gen || data.gen === undefined) { fail(data.message); S.loading = null; }
  } else if (data.type === "mask") {
    const request = data;
    const hoverDone = data.kind === "hover" && !S.hover;
    if (!current(request) || hoverDone || data.width !== S.display.w || data.height !== S.display.h) {
      S.dropped += 1; // computed for a bundle, prompt or size that has moved on
    } else {
      drawMask(data);
      const onScreenMs = performance.now() - (sent ? sent.created : performance.now());
      S.seq += 1;
      S.last = { points: data.points, box: data.box, gen: data.gen, promptGen: data.promptGen, kind: data.kind,
        backend: data.backend, decoderMs: data.decoderMs, totalMs: data.totalMs, onScreenMs, score: data.score };
      S.timings.push({ decoderMs: data.decoderMs, onScreenMs });
      $("timing").textContent = `decoder ${data.decoderMs.toFixed(1)} ms · mask on screen ${onScreenMs.toFixed(1)} ms after the prompt (${data.backend}, ${data.width}×${data.height}); predicted IoU ${data.score.toFixed(3)}`;
    }
  } else if (data.type === "stale") {
    S.dropped += 1;
    const waiting = S.exports.get(data.id);
    if (waiting) { S.exports.delete(data.id); waiting({ type: "error", message: "The photo changed before the export finished." }); }
  }
  if (S.pending) requestAnimationFrame(flush);
};

const RANDOM_NOTE = "The models served here have RANDOM WEIGHTS (no exported model in weights/): masks are meaningless. Run `make weights` for real ones.";
function notices(ready) {
  $("notice").textContent = S.randomModels ? RANDOM_NOTE : "";
  $("backend-note").textContent = ready.backend === "wasm"
    ? `WebGPU recommended: ${ready.why}, so the decoder runs on the CPU (WASM, ${ready.threads} thread${ready.threads > 1 ? "s" : ""}); a hardware WebGPU adapter answers clicks several times faster.`
    : "";
}

// --- drawing --------------------------------------------------------------------------------------------
function drawMask(data) {
  S.lastMask = data.rgba;
  const image = new ImageData(new Uint8ClampedArray(data.rgba.buffer), data.width, data.height);
  if (!S.maskImage || S.maskImage.width !== data.width || S.maskImage.height !== data.height) {
    S.maskImage = new OffscreenCanvas(data.width, data.height);
  }
  S.maskImage.getContext("2d").putImageData(image, 0, 0);
  S.shown = true;
  render();
}

function render() {
  const canvas = $("mask-layer");
  const ctx = canvas.getContext("2d");
  ctx.globalCompositeOperation = "source-over";
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const view = S.view;
  $("stage").classList.toggle("see-through", view !== "overlay" && S.shown);
  if (!S.shown || !S.maskImage || !canvas.width) return;
  if (view === "overlay") {
    ctx.drawImage(S.maskImage, 0, 0);
    ctx.globalCompositeOperation = "source-in";
    ctx.fillStyle = "rgba(30, 144, 255, 0.55)";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  } else if (view === "cutout") { // the photo inside the mask, transparent outside
    ctx.drawImage(S.maskImage, 0, 0);
    ctx.globalCompositeOperation = "source-in";
    ctx.drawImage($("photo-canvas"), 0, 0);
  } else { // erase: the photo with the mask taken out
    ctx.drawImage($("photo-canvas"), 0, 0);
    ctx.globalCompositeOperation = "destination-out";
    ctx.drawImage(S.maskImage, 0, 0);
  }
  ctx.globalCompositeOperation = "source-over";
}
for (const radio of document.querySelectorAll("input[name=view]")) {
  radio.addEventListener("change", () => { S.view = radio.value; render(); });
}

// Markers: include is a filled green disc with a white "+", exclude a red square with a white "−"
// (shape and glyph, not only colour); the box is a dashed outline.
function drawUi() {
  const canvas = ui;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!S.width) return;
  const k = canvas.width / S.width, dpr = S.display.dpr;
  const box = S.drag?.box || S.box;
  if (box) {
    ctx.lineWidth = 2 * dpr;
    ctx.setLineDash([6 * dpr, 4 * dpr]);
    ctx.strokeStyle = "#fff";
    ctx.strokeRect(box[0] * k, box[1] * k, (box[2] - box[0]) * k, (box[3] - box[1]) * k);
    ctx.lineDashOffset = 5 * dpr;
    ctx.strokeStyle = "#000";
    ctx.strokeRect(box[0] * k, box[1] * k, (box[2] - box[0]) * k, (box[3] - box[1]) * k);
    ctx.setLineDash([]);
  }
  const r = MARKER * dpr;
  for (const [x, y, label] of S.points) {
    const cx = x * k, cy = y * k;
    ctx.lineWidth = 2 * dpr;
    ctx.strokeStyle = "#fff";
    ctx.fillStyle = label ? "#12a150" : "#d0202a";
    ctx.beginPath();
    if (label) ctx.arc(cx, cy, r, 0, 2 * Math.PI);
    else ctx.rect(cx - r, cy - r, 2 * r, 2 * r);
    ctx.fill();
    ctx.stroke();
    ctx.beginPath();
    ctx.moveTo(cx - r * 0.55, cy);
    ctx.lineTo(cx + r * 0.55, cy);
    if (label) { ctx.moveTo(cx, cy - r * 0.55); ctx.lineTo(cx, cy + r * 0.55); }
    ctx.stroke();
  }
  if (S.cursor && document.activeElement === ui) {
    const [cx, cy] = [S.cursor[0] * k, S.cursor[1] * k];
    ctx.strokeStyle = "#ff0";
    ctx.lineWidth = 2 * dpr;
    ctx.beginPath();
    ctx.moveTo(cx - 2 * r, cy); ctx.lineTo(cx + 2 * r, cy); ctx.moveTo(cx, cy - 2 * r); ctx.lineTo(cx, cy + 2 * r);
    ctx.stroke();
  }
}

// --- export: full resolution, computed on demand for the current prompts -----------------------------
function exportMask(png) {
  return new Promise((resolve, reject) => {
    if (!S.ready || (!S.points.length && !S.box)) return reject(new Error("Place a prompt first."));
    const id = S.nextId++;
    S.exports.set(id, (data) => (data.type === "error" ? reject(new Error(data.message)) : resolve(data)));
    worker.postMessage({ type: "export", id, gen: S.gen, promptGen: S.promptGen, png, points: S.points.map((p) => [...p]), box: S.box && [...S.box] });
  });
}

function save(blob, name) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
}

$("download-mask").addEventListener("click", async () => {
  try {
    const result = await exportMask(true);
    save(result.png, "mask.png");
  } catch (err) { fail(err); }
});
$("download-cutout").addEventListener("click", async () => {
  try {
    const result = await exportMask(false);
    const { width, height } = result;
    const alpha = new Uint32Array(width * height);
    for (let i = 0; i < alpha.length; i++) if (result.mask[i]) alpha[i] = 0xff000000;
    const maskCanvas = new OffscreenCanvas(width, height);
    maskCanvas.getContext("2d").putImageData(new ImageData(new Uint8ClampedArray(alpha.buffer), width, height), 0, 0);
    const canvas = new OffscreenCanvas(width, height);
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#fff"; // transparency over white first, so the alpha is exactly the mask
    ctx.fillRect(0, 0, width, height);
    ctx.drawImage(S.photo, 0, 0);
    ctx.globalCompositeOperation = "destination-in";
    ctx.drawImage(maskCanvas, 0, 0);
    save(await canvas.convertToBlob({ type: "image/png" }), "cutout.png");
  } catch (err) { fail(err); }
});
$("save-bundle").addEventListener("click", () => {
  if (!S.saved) return;
  save(new Blob([S.saved.payload]), "embedding.bin");
  save(new Blob([S.saved.manifest], { type: "application/json" }), "manifest.json");
});

// --- start: what models does this server decode with? --------------------------------------------------
fetch("/models/model.json").then((r) => (r.ok ? r.json() : null)).then((info) => {
  S.randomModels = Boolean(info?.randomWeights);
  if (S.randomModels) $("notice").textContent = RANDOM_NOTE;
}).catch(() => {});
if (matchMedia("(hover: none)").matches) $("hover").disabled = true; // no hover on touch screens
updateButtons();
