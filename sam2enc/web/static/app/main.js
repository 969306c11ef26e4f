// The page: a photo and its bundle in (demo, disk or Replicate), prompts to the decoder worker, the mask
// on screen at display resolution, full resolution only for export. The only module that touches the
// DOM: it reads inputs, sets text, draws and listens. What it decides is elsewhere, DOM-free: the state
// and its transitions in state.js, the objects in objects.js, each object's prompt list in prompts.js,
// what is decoded next in decode-queue.js, the worker's messages and the exports in decoder-client.js,
// an encode on Replicate in encode-job.js; dataset mode's panel in dataset-view.js (its decisions in
// dataset.js and store.js).
import { cutout, maskToPng } from "../lib/index.js";
import { cocoDocument } from "../lib/coco.js";
import { createDecodeQueue } from "./decode-queue.js";
import { createDecoderClient } from "./decoder-client.js";
import { setupDataset } from "./dataset-view.js";
import { drawPrompts, fit, maskImage, paintPhoto, renderMasks } from "./draw.js";
import { createEncodeJobs } from "./encode-job.js";
import { checkedBundle, classify, decodePhoto } from "./files.js";
import * as objects from "./objects.js";
import * as prompts from "./prompts.js";
import { cancelPrediction, encodeOnReplicate, useProxy } from "./replicate.js";
import { fetchFile, loadConfig, loadDemos, modelUrl, proxyApi, threadsNote } from "./site.js";
import { becameReady, createState, decoderFailed, loading, newPick, notReadyReason, promptsChanged, recordTiming, retire } from "./state.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const POLL_MS = Number(params.get("poll")) || 0; // ms, fixed; default: replicate.js pollDelay
const SYNC_WAIT = params.has("wait") ? Number(params.get("wait")) : undefined; // s; 0: no Prefer (bench)
const BACKEND = params.get("backend") || "auto";
const workerUrl = new URL(`../worker.js?backend=${BACKEND}${params.get("delay") ? `&delay=${params.get("delay")}` : ""}`, import.meta.url);
const worker = new Worker(workerUrl, { type: "module" });
const S = createState();
// What is decoded next (decode-queue.js): `schedule(kind, object)` from anywhere below.
const queue = createDecodeQueue(S, { post: (request) => worker.postMessage(request), nextFrame: (fn) => requestAnimationFrame(fn) });
const schedule = queue.schedule;
const ui = $("mask-canvas");
const canvases = { photo: $("photo-canvas"), mask: $("mask-layer"), ui };

// The documented test hook: the selected object's prompts in photo pixels ([x, y, label]) and box, the
// objects; nothing secret.
window.sam2enc = {
  get points() { return S.prompts.points.map((p) => [...p]); },
  get box() { return S.prompts.box && [...S.prompts.box]; },
  get ready() { return S.ready; },
  get gen() { return S.gen; },
  get promptGen() { return S.prompts.promptGen; },
  get seq() { return S.seq; },
  get dropped() { return S.dropped; },
  get last() { return S.object.shown?.last ?? null; },
  get shown() { return Boolean(S.object.shown); },
  get objects() {
    return S.objects.list.map((o) => ({ id: o.id, number: o.number, label: o.label, color: o.color,
      points: o.prompts.points.map((p) => [...p]), box: o.prompts.box && [...o.prompts.box],
      selected: o.id === S.objects.selectedId, shown: Boolean(o.shown) }));
  },
  get dragging() { return Boolean(S.drag); },
  get timings() { return S.timings; },
  get backend() { return S.backend; },
  get size() { return [S.width, S.height]; },
  get display() { return { ...S.display }; },
  get inflight() { return Boolean(S.inflight); }, // a decode has been sent to the worker
  get photoName() { return S.fileName; }, // the photo on screen (dataset mode: its path in the folder)
  readAhead: (path) => dataset.readAhead(path), // dataset mode: that photo's bundle waits, verified, in the worker
  idle: () => !S.inflight && !S.pending.size,
  // The selected object's mask on screen, one byte (0/1) per pixel of the display-size mask, base64.
  maskBase64: () => {
    const bytes = Uint8Array.from(S.object.shown?.rgba ?? [], (v) => (v ? 1 : 0));
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

// --- the models this server decodes with ------------------------------------------------------------
const RANDOM_NOTE = "RANDOM WEIGHTS (a test export): masks are meaningless. Real ones come from `make weights`.";
const config = loadConfig();
const modelInfo = config.then((c) => fetch(modelUrl(c, "model.json"))).then((r) => (r.ok ? r.json() : null)).catch(() => null).then((info) => {
  S.modelInfo = info;
  S.randomModels = Boolean(info?.randomWeights);
  if (S.randomModels) $("notice").textContent = RANDOM_NOTE;
  return info;
});
/** The decoder's identity, as a manifest names the model that encoded it. */
const decoderModel = async () => {
  const info = await modelInfo;
  return info && { name: info.model, checkpointSha256: info.checkpointSha256 ?? null };
};

// --- photos and bundles: checked in full, then the old one retired and the new one loaded ----------------
function clearCanvases() {
  for (const c of Object.values(canvases)) c.width = c.height = 0;
  S.painted = null;
  $("timing").textContent = "";
}

function retireAll() {
  abandonEncode(true);
  S.encodeFile = null;
  S.encodePhoto = null;
  const gen = retire(S);
  worker.postMessage({ type: "retire", gen });
  clearCanvases();
  updateButtons();
  renderObjects();
  return gen;
}

function showPhoto(photo) {
  S.photo = photo;
  S.width = photo.width;
  S.height = photo.height;
  layout();
}

/**
 * Make a checked photo + bundle the live one: the previous one ends only here. `bundle`: opened here
 * (its features move to the worker), or a dataset photo's message (`key`: the worker opened it ahead).
 */
function goLive(photo, bundle, source, fileName) {
  const gen = retireAll();
  showPhoto(photo);
  S.source = source;
  S.fileName = fileName;
  loading(S, gen);
  setStatus("Loading the decoder…", "loading");
  if (bundle.key) return worker.postMessage({ ...bundle, type: "bundle", gen });
  const buffers = Object.values(bundle.features).map((f) => f.data.buffer);
  worker.postMessage({ type: "bundle", gen, bundle }, buffers);
}

// One picker (and drop target) for photo + embedding.bin + manifest.json. A bad pick leaves the live
// photo, its bundle and its prompts as they were, under a one-sentence error; the newest pick wins.
async function openFiles(files) {
  const pick = newPick(S);
  try {
    const found = await classify(files);
    const photo = await decodePhoto(found.photo);
    const bundle = await checkedBundle(found.manifest, await found.payload.arrayBuffer(), photo, await decoderModel(), found.photo);
    if (pick === S.picks) goLive(photo, bundle, "disk", found.photo.name);
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

// The demos (demos/index.json): encoded at build time (or by `serve` at startup), no token, no network.
// The first is the "Try the demo photo" button, each further one gets a button of its own.
const demos = config.then(loadDemos).catch((err) => ({ demos: [], reason: `The demos could not be loaded (${err.message}).` }));
demos.then(({ demos: list }) => {
  for (const demo of list.slice(1).reverse()) {
    const button = Object.assign(document.createElement("button"), { type: "button", textContent: `Try ${demo.title}` });
    button.addEventListener("click", () => openDemo(demo));
    $("demo").after(button);
  }
});
$("demo").addEventListener("click", async () => {
  const { demos: [first], reason } = await demos;
  if (first) openDemo(first);
  else fail(reason);
});
async function openDemo(info) {
  const pick = newPick(S);
  try {
    setStatus("Loading the demo photo…", "loading");
    const [photoBlob, payload, manifest] = await Promise.all([fetchFile(info.photo, "blob", "The demo photo"),
      fetchFile(info.embedding, "arrayBuffer", "The demo's embedding.bin"), fetchFile(info.manifest, "json", "The demo's manifest.json")]);
    const photo = await decodePhoto(photoBlob);
    const bundle = await checkedBundle(manifest, payload, photo, await decoderModel(), photoBlob);
    if (pick === S.picks) goLive(photo, bundle, "demo", decodeURIComponent(new URL(info.photo, location.href).pathname.split("/").pop()));
  } catch (err) {
    if (pick === S.picks) fail(err);
  }
}

// --- Replicate, through the token proxy: offered only when the site has one (app/site.js) --------------
config.then(proxyApi).then((api) => {
  useProxy(api);
  $("remote-box").hidden = !api;
});
const token = () => $("token").value.trim();
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
$("version").addEventListener("input", () => encodeHint());

// Choosing the photo sends nothing: the upload (and the model lookup) wait for Encode. With nothing
// live the photo is shown at once; a live photo, its bundle and its prompts stay, usable, until the new
// photo's bundle has come back and been verified: a failed or canceled encode costs nothing.
$("photo").addEventListener("change", async () => {
  const file = $("photo").files[0];
  if (!file) return;
  const pick = newPick(S);
  try {
    const photo = await decodePhoto(file);
    if (pick !== S.picks) return;
    abandonEncode(true);
    if (!S.ready) { retireAll(); showPhoto(photo); }
    S.encodeFile = file;
    S.encodePhoto = photo;
    encodeHint(true);
  } catch (err) {
    if (pick === S.picks) fail(err);
  }
});
$("encode").addEventListener("click", () => startEncode());
$("retry").addEventListener("click", () => startEncode());
$("cancel").addEventListener("click", () => abandonEncode(true, "Canceled."));

/** What the user must do next to get a bundle for the photo to encode, as the end of a sentence. */
function encodeStep() {
  if ($("remote-box").hidden) return "open it together with its embedding.bin and manifest.json (`sam2enc encode` writes them)";
  const missing = [!token() && "your Replicate API token", !$("version").value.trim() && "the model"].filter(Boolean);
  if (missing.length) return `enter ${missing.join(" and ")}, then press Encode`;
  return $("remote-status").classList.contains("error") ? "press Retry" : "press Encode";
}
function encodeHint(force = false) {
  updateButtons();
  if (!S.encodeFile || S.encode) return;
  const step = encodeStep();
  const text = `${step[0].toUpperCase()}${step.slice(1)} to send the photo to Replicate.`;
  if (force || $("remote-status").dataset.hint) remoteStatus(text, false, true);
  if (S.ready || (!force && $("status").dataset.state !== "idle")) return; // a live photo keeps its line
  setStatus(text, "idle");
}

function remoteStatus(text, error = false, hint = false) {
  $("remote-status").textContent = text;
  $("remote-status").classList.toggle("error", error);
  if (hint) $("remote-status").dataset.hint = "1";
  else delete $("remote-status").dataset.hint;
  updateButtons(); // Encode or Retry follows the line
}

const encodeJobs = createEncodeJobs(S, {
  encodeOnReplicate, cancelPrediction: (id) => cancelPrediction(id, token()),
  check: async (files, job) => {
    const manifest = new TextDecoder().decode(files.manifest);
    const bundle = await checkedBundle(manifest, files.payload, job.photo, await decoderModel(), job.file);
    performance.mark("sam2enc:parsed");
    return bundle;
  },
  encoded: (job, bundle, saved) => {
    if (dataset.encoded(job.file, saved)) return; // a photo of the open folder: it opens as one of them
    goLive(job.photo, bundle, "remote", job.file.name);
    S.saved = saved;
  },
  remote: (text, error) => remoteStatus(text, error), status: setStatus, changed: () => updateButtons(),
});

function abandonEncode(cancelRemote, message) {
  if (!encodeJobs.abandon(cancelRemote)) return;
  if (message) { remoteStatus(message); setStatus(message, "idle"); }
  updateButtons();
}

async function startEncode() {
  const file = S.encodeFile, photo = S.encodePhoto;
  if (!file) return fail("Choose a photo to encode first.");
  abandonEncode(true);
  newPick(S);
  await encodeJobs.start(file, photo, { version: $("version").value, token: token(), pollMs: POLL_MS, wait: SYNC_WAIT });
}

function updateButtons() {
  const encoding = Boolean(S.encode);
  const canEncode = Boolean(S.encodeFile && token() && $("version").value.trim());
  const failed = $("remote-status").classList.contains("error");
  $("encode").hidden = failed; // after a failure the same button reads Retry: one button, one meaning
  $("retry").hidden = !failed;
  $("encode").disabled = encoding || !canEncode;
  $("retry").disabled = encoding || !canEncode;
  $("cancel").disabled = !encoding;
  const haveMask = S.ready && objects.inScope(S.objects, S.scope).length > 0;
  $("download-mask").disabled = !haveMask;
  $("download-cutout").disabled = !haveMask;
  $("download-coco").disabled = !(S.ready && objects.annotated(S.objects).length);
  $("save-bundle").disabled = !S.saved;
  $("undo").disabled = !S.prompts.history.length;
  $("redo").disabled = !S.prompts.future.length;
  $("clear").disabled = !prompts.hasPrompts(S.prompts); // nothing to clear
  $("new-object").disabled = !S.ready; // objects belong to a photo with a bundle
  $("delete-object").disabled = !S.ready || (S.objects.list.length === 1 && !prompts.hasPrompts(S.prompts) && !S.prompts.history.length);
  const deleted = objects.lastDeleted(S.objects);
  $("undo-delete").hidden = !deleted;
  if (deleted) $("undo-delete").textContent = `Undo delete (#${deleted.number} ${deleted.label})`;
}

// --- layout: the photo fits the room the window leaves it, with its bar (tools, objects, exports) under it
// on screen too; masks at display resolution ----------------------------------------------------------------
function layout() {
  if (!S.photo) return;
  const stage = $("stage"), main = stage.parentElement;
  const availW = Math.max(120, main.clientWidth);
  const box = stage.getBoundingClientRect();
  const top = box.top + window.scrollY;
  const below = main.lastElementChild.getBoundingClientRect().bottom - box.bottom; // the bar under the photo
  const pad = parseFloat(getComputedStyle(document.body).paddingBottom) || 0;
  const availH = Math.max(160, window.innerHeight - Math.min(top, window.innerHeight * 0.4) - below - pad - 4);
  const display = fit(S.width, S.height, availW, availH, window.devicePixelRatio || 1);
  // The same photo at the same size (a resize that changed nothing; "Ready", whose notices have room kept
  // for them): the photo and its masks stay. Painting a 12 MP photo again costs ~100 ms.
  if (S.painted === S.photo && ["cssW", "cssH", "w", "h", "dpr"].every((k) => display[k] === S.display[k])) return;
  S.display = display;
  S.painted = S.photo;
  paintPhoto(canvases, S.photo, S.display);
  for (const object of S.objects.list) object.shown = null; // decoded again at the new size
  render();
  drawUi();
  for (const object of objects.annotated(S.objects)) schedule("prompt", object);
}
let resizeTimer = 0;
window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(layout, 100); });

function render() {
  const selectedId = S.objects.selectedId;
  const shown = (list) => list.filter((o) => o.shown).map((o) => ({ image: o.shown.image, color: o.color, selected: o.id === selectedId }));
  const masks = S.view === "overlay"
    ? shown([...S.objects.list.filter((o) => o.id !== selectedId), S.object]) // the selected one on top
    : shown(objects.inScope(S.objects, S.scope));
  $("stage").classList.toggle("see-through", S.view !== "overlay" && masks.length > 0);
  renderMasks(canvases.mask, canvases.photo, masks, S.view);
}
for (const radio of document.querySelectorAll("input[name=view]")) {
  radio.addEventListener("change", () => { S.view = radio.value; render(); });
}
for (const radio of document.querySelectorAll("input[name=scope]")) {
  radio.addEventListener("change", () => { S.scope = radio.value; render(); updateButtons(); });
}

function drawUi() {
  const box = S.drag?.box || S.prompts.box;
  const cursor = S.cursor && document.activeElement === ui ? S.cursor : null;
  const others = S.objects.list.filter((o) => o !== S.object && prompts.hasPrompts(o.prompts))
    .map((o) => ({ points: o.prompts.points, box: o.prompts.box, color: o.color }));
  drawPrompts(ui, { points: S.prompts.points, box, photoWidth: S.width, dpr: S.display.dpr, cursor, others });
}

// --- prompts ----------------------------------------------------------------------------------------------
function afterEdit() {
  S.justDeleted = false;
  promptsChanged(S);
  if (S.ready && ["error", "refused"].includes($("status").dataset.state)) setStatus(S.readyText, "ready");
  drawUi();
  updateButtons();
  renderObjects();
  dataset.changed();
  if (prompts.hasPrompts(S.prompts)) schedule("prompt");
  else { S.object.shown = null; render(); }
}
// Ctrl/Cmd+Z right after "Delete object" puts the object back; otherwise it undoes the selected object's
// last prompt edit.
const undo = () => (S.justDeleted ? restoreObject() : prompts.undo(S.prompts) && afterEdit());
const redo = () => prompts.redo(S.prompts) && afterEdit();
const clearPrompts = () => prompts.clear(S.prompts) && afterEdit();
$("undo").addEventListener("click", undo);
$("redo").addEventListener("click", redo);
$("clear").addEventListener("click", clearPrompts);

// --- objects: each with its own prompts, mask, colour and label; the selected one takes the clicks ------
/** The selection (or the list) changed: the page follows, and a mask missing after a resize is decoded. */
function afterSelect() {
  S.justDeleted = false;
  S.hover = null;
  S.drag = null;
  drawUi();
  render();
  renderObjects();
  updateButtons();
  dataset.changed();
  if (S.ready && !S.object.shown && prompts.hasPrompts(S.prompts)) schedule("prompt");
}
function newObject() {
  if (refuseIfNotReady("No new object")) return;
  objects.addObject(S.objects);
  afterSelect(); // the focus stays where it was: the next click or key goes on annotating
}
function deleteObject() {
  if (refuseIfNotReady("Nothing deleted")) return;
  const id = S.objects.selectedId;
  queue.forget(id);
  objects.remove(S.objects, id);
  afterSelect();
  S.justDeleted = true; // the next Ctrl/Cmd+Z puts it back
}
function restoreObject() {
  if (!objects.restore(S.objects)) return false;
  afterSelect();
  return true;
}
$("new-object").addEventListener("click", newObject);
$("delete-object").addEventListener("click", deleteObject);
$("undo-delete").addEventListener("click", restoreObject);
$("object-label").addEventListener("input", () => {
  if (objects.rename(S.objects, S.objects.selectedId, $("object-label").value)) { renderObjects(); dataset.changed(); }
});
$("object-label").addEventListener("change", () => { $("object-label").value = S.object.label; }); // blank: back to the label

/** The object chips under the photo (tap to select) and the selected object's label field. */
function renderObjects() {
  const list = $("objects");
  list.replaceChildren(...S.objects.list.map((o) => {
    const chip = document.createElement("button");
    chip.type = "button";
    chip.className = "object";
    chip.dataset.id = o.id;
    const selected = o.id === S.objects.selectedId;
    chip.setAttribute("aria-pressed", String(selected));
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = `rgb(${o.color.join(", ")})`;
    const count = o.prompts.points.length + (o.prompts.box ? 1 : 0);
    const note = count ? ` · ${count} prompt${count === 1 ? "" : "s"}` : " · empty";
    chip.append(swatch, `#${o.number} ${o.label}`, Object.assign(document.createElement("small"), { textContent: note }));
    chip.title = `Object ${o.number} (${o.label}): ${count} prompt${count === 1 ? "" : "s"}${selected ? ", selected" : ""}`;
    chip.addEventListener("click", () => { if (objects.select(S.objects, o.id)) afterSelect(); });
    return chip;
  }));
  if (document.activeElement !== $("object-label")) $("object-label").value = S.object.label;
  $("object-label").style.borderColor = `rgb(${S.object.color.join(", ")})`;
  $("selected-object").textContent = String(S.object.number);
}

function refuseIfNotReady(what = "Prompt not placed") {
  if (S.ready) return false;
  setStatus(`${what}: ${notReadyReason(S, encodeStep())}.`, "refused");
  return true;
}

const modeLabel = () => Number(document.querySelector("input[name=mode]:checked").value);

/** Photo pixels and CSS px (from the photo's corner) of a pointer event; the scale between them. */
function where(event) {
  const rect = ui.getBoundingClientRect();
  const css = [event.clientX - rect.left, event.clientY - rect.top];
  const scale = rect.width / S.width;
  return { photo: prompts.clampToPhoto([css[0] / scale, (css[1] * S.height) / rect.height], S.width, S.height), css, scale };
}

ui.addEventListener("contextmenu", (e) => e.preventDefault()); // right-click excludes; no menu
ui.addEventListener("pointerdown", (e) => {
  if (e.button !== 0 && e.button !== 2) return;
  e.preventDefault();
  ui.focus({ preventScroll: true });
  if (S.cursor) { S.cursor = null; drawUi(); } // the pointer is in use: no keyboard cursor
  if (refuseIfNotReady()) return;
  ui.setPointerCapture(e.pointerId);
  S.hover = null;
  S.drag = { id: e.pointerId, start: where(e).photo, client: [e.clientX, e.clientY], button: e.button, shift: e.shiftKey, moved: false };
});
ui.addEventListener("pointermove", (e) => {
  if (S.drag && e.pointerId === S.drag.id) {
    if (S.drag.button !== 0) return;
    if (!S.drag.moved && Math.hypot(e.clientX - S.drag.client[0], e.clientY - S.drag.client[1]) < 6) return;
    S.drag.moved = true;
    S.drag.box = prompts.boxFrom(S.drag.start, where(e).photo);
    drawUi();
    schedule("drag"); // the mask follows the box while it is drawn
  } else if (!S.drag && e.pointerType === "mouse" && $("hover").checked && S.ready) {
    S.hover = [...where(e).photo, modeLabel()];
    schedule("hover");
  }
});
function finishDrag(e, commit) {
  const drag = S.drag;
  if (!drag || e.pointerId !== drag.id) return;
  S.drag = null;
  if (ui.hasPointerCapture(e.pointerId)) ui.releasePointerCapture(e.pointerId);
  if (!commit) { drawUi(); return; }
  const at = where(e);
  if (drag.moved) {
    prompts.setBox(S.prompts, prompts.boxFrom(drag.start, at.photo));
    afterEdit();
    return;
  }
  const label = drag.button === 2 || drag.shift || e.shiftKey ? 0 : modeLabel();
  prompts.click(S.prompts, at.photo, at.css, at.scale, label);
  afterEdit();
}
ui.addEventListener("pointerup", (e) => finishDrag(e, true));
ui.addEventListener("pointercancel", (e) => finishDrag(e, false));
ui.addEventListener("lostpointercapture", (e) => finishDrag(e, true)); // released outside the window
ui.addEventListener("pointerleave", () => {
  if (!S.hover) return;
  S.hover = null;
  queue.forget(S.objects.selectedId);
  if (prompts.hasPrompts(S.prompts)) schedule("prompt");
  else { S.object.shown = null; render(); }
});

// Keyboard: the focused photo has a cursor once an arrow key is used; arrows move it, Enter includes,
// Shift+Enter excludes. Other keys (Shift, Ctrl for a click or an undo) never make one.
ui.addEventListener("keydown", (e) => {
  const steps = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
  if (!steps[e.key] && e.key !== "Enter") return;
  e.preventDefault();
  if (e.key === "Enter" && refuseIfNotReady()) return;
  if (!S.width) return;
  if (!S.cursor) S.cursor = [S.width / 2, S.height / 2];
  if (steps[e.key]) {
    const step = e.altKey ? 1 : Math.max(1, Math.round(Math.max(S.width, S.height) / 50));
    S.cursor = prompts.clampToPhoto([S.cursor[0] + steps[e.key][0] * step, S.cursor[1] + steps[e.key][1] * step], S.width, S.height);
    drawUi();
  } else {
    prompts.addPoint(S.prompts, [S.cursor[0], S.cursor[1], e.shiftKey ? 0 : modeLabel()]);
    afterEdit();
  }
});
ui.addEventListener("focus", drawUi);
ui.addEventListener("blur", drawUi);
document.addEventListener("keydown", (e) => {
  const typing = e.target instanceof HTMLInputElement && ["text", "password"].includes(e.target.type);
  if (typing) return;
  const command = e.ctrlKey || e.metaKey;
  if (command && !e.shiftKey && e.key.toLowerCase() === "z") { e.preventDefault(); undo(); }
  else if (command && ((e.shiftKey && e.key.toLowerCase() === "z") || e.key.toLowerCase() === "y")) { e.preventDefault(); redo(); }
  else if (e.key === "Escape") { e.preventDefault(); clearPrompts(); }
  else if (command || e.altKey) return;
  else if (e.key === "n" || e.key === "N") { e.preventDefault(); newObject(); }
  else if (e.key === "]" || e.key === "[") {
    e.preventDefault();
    objects.cycle(S.objects, e.key === "]" ? 1 : -1);
    afterSelect();
  }
});

// --- decoding: one request in flight, the newest waiting for each object (the selected one first), at
// most one send per animation frame (decode-queue.js); the worker's answers routed by decoder-client.js --

/** The decoder cannot work on this page (its files, its runtime or its worker failed to load): said once,
 * naming what failed; every later click says the same instead of offering an Encode or a wait. */
function failDecoder(message) {
  decoderFailed(S, message);
  setStatus(message, "error");
  updateButtons();
}
worker.onerror = (event) => {
  event.preventDefault();
  failDecoder(`The decoder could not be loaded: its worker (static/worker.js) failed to start${event.message ? ` (${event.message})` : ""}.`);
};

function decoderReady(data) {
  const threads = data.backend === "wasm" ? `, ${data.threads} thread${data.threads > 1 ? "s" : ""}` : "";
  const how = matchMedia("(pointer: coarse)").matches ? "Tap the photo (Include/Exclude under it), drag for a box."
    : "Click the photo to include, right-click to exclude, drag for a box.";
  if (!becameReady(S, data.gen, `Ready (${data.backend}${threads}). ${how}`)) return;
  performance.mark("sam2enc:ready");
  S.backend = data.backend;
  setStatus(S.readyText, "ready");
  $("timing").textContent = `decoder warm-up ${data.warmupMs.toFixed(0)} ms`;
  notices(data);
  layout(); // the notices may have moved the photo down: fit it again
  updateButtons();
  for (const o of objects.annotated(S.objects)) if (!o.shown) schedule("prompt", o); // a dataset photo's saved work
}

const client = createDecoderClient(S, {
  post: (message) => worker.postMessage(message), queue, toPng: maskToPng,
  on: { failed: failDecoder, ready: decoderReady, mask: showMask, error: fail, prefetched: (data) => dataset.prefetched(data) },
});
worker.onmessage = ({ data }) => client.receive(data);

function showMask(object, data, sent) {
  performance.mark("sam2enc:mask");
  const onScreenMs = performance.now() - (sent ? sent.created : performance.now());
  const last = { points: data.points, box: data.box, gen: data.gen, promptGen: data.promptGen, kind: data.kind,
    objectId: object.id, backend: data.backend, decoderMs: data.decoderMs, totalMs: data.totalMs, onScreenMs, score: data.score };
  object.shown = { image: maskImage(data.rgba, data.width, data.height, object.shown?.image), rgba: data.rgba, last };
  render();
  S.seq += 1;
  recordTiming(S, { decoderMs: data.decoderMs, onScreenMs });
  $("timing").textContent = `decoder ${data.decoderMs.toFixed(1)} ms · mask on screen ${onScreenMs.toFixed(1)} ms after the prompt (${data.backend}, ${data.width}×${data.height}); predicted IoU ${data.score.toFixed(3)}`;
}

function notices(ready) {
  $("notice").textContent = S.randomModels ? RANDOM_NOTE : "";
  $("backend-note").textContent = ready.backend === "wasm"
    ? `WebGPU recommended: ${ready.why}, so the decoder runs on the CPU (WASM, ${ready.threads} thread${ready.threads > 1 ? "s" : ""}); a hardware WebGPU adapter answers clicks several times faster.`
    : "";
  $("threads-note").textContent = threadsNote(ready);
}

// --- export: full resolution, computed on demand for the current prompts -----------------------------
/** Every object with prompts as one COCO document (lib/coco.js; `sam2enc decode --prompts` remakes it). */
async function exportCoco() {
  const chosen = S.ready ? objects.annotated(S.objects) : [];
  if (!chosen.length) throw new Error("Place a prompt first.");
  const results = await Promise.all(chosen.map((o) => client.exportObject(o)));
  return cocoDocument({
    fileName: S.fileName || "photo", width: S.width, height: S.height,
    objects: chosen.map((o, i) => ({ label: o.label, mask: results[i].mask, points: results[i].points, box: results[i].box })),
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
    const result = await client.exportMask(true);
    save(new Blob([result.png], { type: "image/png" }), "mask.png");
  } catch (err) { fail(err); }
});
$("download-cutout").addEventListener("click", async () => {
  try {
    const { width, height, mask } = await client.exportMask(false);
    const canvas = new OffscreenCanvas(width, height);
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#fff"; // transparency over white first, so the alpha is exactly the mask
    ctx.fillRect(0, 0, width, height);
    ctx.drawImage(S.photo, 0, 0);
    const pixels = cutout(ctx.getImageData(0, 0, width, height).data, mask);
    ctx.putImageData(new ImageData(pixels, width, height), 0, 0);
    save(await canvas.convertToBlob({ type: "image/png" }), "cutout.png");
  } catch (err) { fail(err); }
});
$("download-coco").addEventListener("click", async () => {
  try {
    const document = await exportCoco();
    const stem = (S.fileName || "photo").replace(/\.[^.]*$/, "");
    save(new Blob([JSON.stringify(document)], { type: "application/json" }), `${stem}.coco.json`);
  } catch (err) { fail(err); }
});
$("save-bundle").addEventListener("click", () => {
  if (!S.saved) return;
  save(new Blob([S.saved.payload]), "embedding.bin");
  save(new Blob([S.saved.manifest], { type: "application/json" }), "manifest.json");
});

// Dataset mode (dataset-view.js): a folder's photos one after another, each photo's work kept.
const dataset = setupDataset({
  S, setStatus, fail, retireAll, showPhoto, goLive: (photo, message, name) => goLive(photo, message, "dataset", name),
  post: (message) => worker.postMessage(message), request: (message) => client.request(message), decoderModel, save,
  restored: () => { renderObjects(); updateButtons(); drawUi(); },
  offerEncode: (file, photo) => {
    S.encodeFile = file;
    S.encodePhoto = photo;
    updateButtons();
    if (!$("remote-box").hidden) remoteStatus(`${encodeStep()[0].toUpperCase()}${encodeStep().slice(1)} to send ${file.name} to Replicate.`, false, true);
  },
});

if (matchMedia("(hover: none)").matches) $("hover").disabled = true; // no hover on touch screens
updateButtons();
renderObjects();
