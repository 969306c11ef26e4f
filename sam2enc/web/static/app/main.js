// The page: a photo and its bundle in (demo, disk or Replicate), prompts to the decoder worker, the mask
// on screen at display resolution, full resolution only for export. The only module that touches the
// DOM; the state and its transitions are in state.js, the prompt list in prompts.js.
import { cutout } from "../lib/index.js";
import { drawPrompts, fit, maskImage, paintPhoto, renderMask } from "./draw.js";
import { checkedBundle, classify, decodePhoto } from "./files.js";
import * as prompts from "./prompts.js";
import { cancelPrediction, encodeOnReplicate } from "./replicate.js";
import { becameReady, createState, isCurrent, loading, newPick, notReadyReason, promptsChanged, retire } from "./state.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const POLL_MS = Number(params.get("poll") || 1000);
const BACKEND = params.get("backend") || "auto";
const workerUrl = `/static/worker.js?backend=${BACKEND}${params.get("delay") ? `&delay=${params.get("delay")}` : ""}`;
const worker = new Worker(workerUrl, { type: "module" });
const S = createState();
const ui = $("mask-canvas");
const canvases = { photo: $("photo-canvas"), mask: $("mask-layer"), ui };

// The documented test hook: current prompts in photo pixels ([x, y, label]) and box; nothing secret.
window.sam2enc = {
  get points() { return S.prompts.points.map((p) => [...p]); },
  get box() { return S.prompts.box && [...S.prompts.box]; },
  get ready() { return S.ready; },
  get gen() { return S.gen; },
  get promptGen() { return S.prompts.promptGen; },
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
  // The mask on screen, one byte (0/1) per pixel of the display-size mask, base64: for tests.
  maskBase64: () => {
    const bytes = Uint8Array.from(S.lastMask ?? [], (v) => (v ? 1 : 0));
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
const RANDOM_NOTE = "The models served here have RANDOM WEIGHTS (no exported model in weights/): masks are meaningless. Run `make weights` for real ones.";
const modelInfo = fetch("/models/model.json").then((r) => (r.ok ? r.json() : null)).catch(() => null).then((info) => {
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
  return gen;
}

function showPhoto(photo) {
  S.photo = photo;
  S.width = photo.width;
  S.height = photo.height;
  layout();
}

/** Make a checked photo + bundle the live one: the previous one ends only here. */
function goLive(photo, bundle, source) {
  const gen = retireAll();
  showPhoto(photo);
  S.source = source;
  loading(S, gen);
  setStatus("Loading the decoder…", "loading");
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
    const bundle = await checkedBundle(found.manifest, await found.payload.arrayBuffer(), photo, await decoderModel());
    if (pick === S.picks) goLive(photo, bundle, "disk");
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

// The demo photo: encoded by the server at startup, no token, no network.
$("demo").addEventListener("click", async () => {
  const pick = newPick(S);
  try {
    setStatus("Loading the demo photo…", "loading");
    const info = await (await fetch("/demo/info.json")).json();
    if (!info.available) throw new Error(info.reason || "This server has no demo photo.");
    const [photoBlob, payload, manifest] = await Promise.all([
      fetch(info.photo).then((r) => r.blob()), fetch(info.embedding).then((r) => r.arrayBuffer()), fetch(info.manifest).then((r) => r.json())]);
    const photo = await decodePhoto(photoBlob);
    const bundle = await checkedBundle(manifest, payload, photo, await decoderModel());
    if (pick === S.picks) goLive(photo, bundle, "demo");
  } catch (err) {
    if (pick === S.picks) fail(err);
  }
});

// --- Replicate, through the local proxy ----------------------------------------------------------------
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
// live the photo is shown at once; a live photo and its bundle stay until Encode is pressed.
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
    remoteStatus("");
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
  const missing = [!token() && "your Replicate API token", !$("version").value.trim() && "the model"].filter(Boolean);
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

function remoteStatus(text, error = false) {
  $("remote-status").textContent = text;
  $("remote-status").classList.toggle("error", error);
}

function abandonEncode(cancelRemote, message) {
  const job = S.encode;
  if (!job) return;
  S.encode = null;
  job.abort.abort();
  clearInterval(job.ticker);
  if (cancelRemote && job.id) cancelPrediction(job.id, token());
  if (message) { remoteStatus(message); setStatus(message, "idle"); }
  updateButtons();
}

async function startEncode() {
  const file = S.encodeFile, photo = S.encodePhoto;
  if (!file) return fail("Choose a photo to encode first.");
  abandonEncode(true);
  newPick(S);
  // A new encode retires whatever bundle is live: its clicks must not land on the old embedding.
  const gen = retireAll();
  showPhoto(photo);
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
    const files = await encodeOnReplicate(file, $("version").value, {
      token: token(), signal: job.abort.signal, pollMs: POLL_MS, live,
      status: (text) => { job.status = text; }, note: (text) => { job.note = text; }, prediction: (id) => { job.id = id; },
    });
    if (!files || !live()) return;
    const saved = { manifest: files.manifest, payload: files.payload.slice(0) };
    const manifest = new TextDecoder().decode(files.manifest);
    const bundle = await checkedBundle(manifest, files.payload, photo, await decoderModel());
    if (!live()) return;
    clearInterval(job.ticker);
    S.encode = null;
    remoteStatus(`Encoded in ${((performance.now() - job.start) / 1000).toFixed(1)} s (prediction ${job.id}).`);
    loading(S, gen);
    setStatus("Loading the decoder…", "loading");
    S.source = "remote";
    worker.postMessage({ type: "bundle", gen, bundle }, Object.values(bundle.features).map((f) => f.data.buffer));
    S.saved = saved;
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
  const canEncode = Boolean(S.encodeFile && token() && $("version").value.trim());
  $("encode").disabled = encoding || !canEncode;
  $("retry").disabled = encoding || !canEncode || !$("remote-status").classList.contains("error");
  $("cancel").disabled = !encoding;
  const haveMask = S.ready && prompts.hasPrompts(S.prompts);
  $("download-mask").disabled = !haveMask;
  $("download-cutout").disabled = !haveMask;
  $("save-bundle").disabled = !S.saved;
}

// --- layout: the photo fits the window with the prompt tools under it; masks at display resolution -------
function layout() {
  if (!S.photo) return;
  const stage = $("stage");
  const availW = Math.max(120, stage.parentElement.clientWidth);
  const top = stage.getBoundingClientRect().top + window.scrollY;
  const tools = $("tools").offsetHeight + 8; // the prompt tools stay on screen under the photo
  const availH = Math.max(240, window.innerHeight - Math.min(top, window.innerHeight * 0.4) - 12 - tools);
  S.display = fit(S.width, S.height, availW, availH, window.devicePixelRatio || 1);
  paintPhoto(canvases, S.photo, S.display);
  S.maskImage = null;
  S.shown = false;
  S.lastMask = null;
  render();
  drawUi();
  if (S.ready && prompts.hasPrompts(S.prompts)) schedule("prompt");
}
let resizeTimer = 0;
window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(layout, 100); });

function render() {
  $("stage").classList.toggle("see-through", S.view !== "overlay" && S.shown);
  renderMask(canvases.mask, canvases.photo, S.shown ? S.maskImage : null, S.view);
}
for (const radio of document.querySelectorAll("input[name=view]")) {
  radio.addEventListener("change", () => { S.view = radio.value; render(); });
}

function drawUi() {
  const box = S.drag?.box || S.prompts.box;
  const cursor = S.cursor && document.activeElement === ui ? S.cursor : null;
  drawPrompts(ui, { points: S.prompts.points, box, photoWidth: S.width, dpr: S.display.dpr, cursor });
}

// --- prompts ----------------------------------------------------------------------------------------------
function afterEdit() {
  S.pending = null;
  if (S.ready && ["error", "refused"].includes($("status").dataset.state)) setStatus(S.readyText, "ready");
  drawUi();
  updateButtons();
  if (prompts.hasPrompts(S.prompts)) schedule("prompt");
  else { S.maskImage = null; S.shown = false; S.lastMask = null; S.last = null; render(); }
}
const undo = () => prompts.undo(S.prompts) && afterEdit();
const clearPrompts = () => prompts.clear(S.prompts) && afterEdit();
$("undo").addEventListener("click", undo);
$("clear").addEventListener("click", clearPrompts);

function refuseIfNotReady() {
  if (S.ready) return false;
  setStatus(`Prompt not placed: ${notReadyReason(S, encodeStep())}.`, "refused");
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
  S.pending = null;
  if (prompts.hasPrompts(S.prompts)) schedule("prompt");
  else { S.maskImage = null; S.shown = false; S.lastMask = null; render(); }
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
  if ((e.ctrlKey || e.metaKey) && !e.shiftKey && e.key.toLowerCase() === "z") { e.preventDefault(); undo(); }
  else if (e.key === "Escape") { e.preventDefault(); clearPrompts(); }
});

// --- decoding: one request in flight, the newest waiting, at most one send per animation frame --------
function schedule(kind) {
  if (!S.ready) return;
  const hover = kind === "hover" && S.hover;
  const box = S.drag?.box || S.prompts.box;
  const points = S.prompts.points.map((p) => [...p]);
  if (hover) points.push([...S.hover]);
  if (!points.length && !box) return;
  S.pending = { kind, points, box: box && [...box], gen: S.gen, promptGen: S.prompts.promptGen, created: performance.now() };
  requestAnimationFrame(flush);
}

function flush() {
  if (S.inflight || !S.pending) return;
  const request = { ...S.pending, id: S.nextId++, type: "decode", display: [S.display.w, S.display.h] };
  S.pending = null;
  S.inflight = request;
  worker.postMessage(request);
}

worker.onmessage = ({ data }) => {
  if (data.type === "ready") {
    const threads = data.backend === "wasm" ? `, ${data.threads} thread${data.threads > 1 ? "s" : ""}` : "";
    const how = matchMedia("(pointer: coarse)").matches ? "Tap the photo (Include/Exclude under it), drag for a box."
      : "Click the photo to include, right-click to exclude, drag for a box.";
    if (!becameReady(S, data.gen, `Ready (${data.backend}${threads}). ${how}`)) return;
    S.backend = data.backend;
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
    if (data.gen === S.gen || data.gen === undefined) { S.loading = null; fail(data.message); }
  } else if (data.type === "mask") {
    const hoverDone = data.kind === "hover" && !S.hover;
    if (!isCurrent(S, data) || hoverDone || data.width !== S.display.w || data.height !== S.display.h) {
      S.dropped += 1; // computed for a bundle, prompt or size that has moved on
    } else {
      showMask(data, sent);
    }
  } else if (data.type === "stale") {
    S.dropped += 1;
    const waiting = S.exports.get(data.id);
    if (waiting) { S.exports.delete(data.id); waiting({ type: "error", message: "The photo changed before the export finished." }); }
  }
  if (S.pending) requestAnimationFrame(flush);
};

function showMask(data, sent) {
  S.lastMask = data.rgba;
  S.maskImage = maskImage(data.rgba, data.width, data.height, S.maskImage);
  S.shown = true;
  render();
  const onScreenMs = performance.now() - (sent ? sent.created : performance.now());
  S.seq += 1;
  S.last = { points: data.points, box: data.box, gen: data.gen, promptGen: data.promptGen, kind: data.kind,
    backend: data.backend, decoderMs: data.decoderMs, totalMs: data.totalMs, onScreenMs, score: data.score };
  S.timings.push({ decoderMs: data.decoderMs, onScreenMs });
  $("timing").textContent = `decoder ${data.decoderMs.toFixed(1)} ms · mask on screen ${onScreenMs.toFixed(1)} ms after the prompt (${data.backend}, ${data.width}×${data.height}); predicted IoU ${data.score.toFixed(3)}`;
}

function notices(ready) {
  $("notice").textContent = S.randomModels ? RANDOM_NOTE : "";
  $("backend-note").textContent = ready.backend === "wasm"
    ? `WebGPU recommended: ${ready.why}, so the decoder runs on the CPU (WASM, ${ready.threads} thread${ready.threads > 1 ? "s" : ""}); a hardware WebGPU adapter answers clicks several times faster.`
    : "";
}

// --- export: full resolution, computed on demand for the current prompts -----------------------------
function exportMask(png) {
  return new Promise((resolve, reject) => {
    if (!S.ready || !prompts.hasPrompts(S.prompts)) return reject(new Error("Place a prompt first."));
    const id = S.nextId++;
    S.exports.set(id, (data) => (data.type === "error" ? reject(new Error(data.message)) : resolve(data)));
    worker.postMessage({ type: "export", id, gen: S.gen, promptGen: S.prompts.promptGen, png,
      points: S.prompts.points.map((p) => [...p]), box: S.prompts.box && [...S.prompts.box] });
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
    save(new Blob([result.png], { type: "image/png" }), "mask.png");
  } catch (err) { fail(err); }
});
$("download-cutout").addEventListener("click", async () => {
  try {
    const { width, height, mask } = await exportMask(false);
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
$("save-bundle").addEventListener("click", () => {
  if (!S.saved) return;
  save(new Blob([S.saved.payload]), "embedding.bin");
  save(new Blob([S.saved.manifest], { type: "application/json" }), "manifest.json");
});

if (matchMedia("(hover: none)").matches) $("hover").disabled = true; // no hover on touch screens
updateButtons();
