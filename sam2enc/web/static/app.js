// The page: token and photo in, bundle from the proxy, clicks to the decoder worker, mask on screen.
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const POLL_MS = Number(params.get("poll") || 500);
const worker = new Worker(`/static/worker.js?backend=${params.get("backend") || "auto"}`, { type: "module" });
const state = { width: 0, height: 0, points: [], box: null, pending: null, busy: false, seq: 0, last: null };
window.sam2enc = state; // read by the browser test; nothing secret lives here

function setStatus(text, kind) {
  $("status").textContent = text;
  $("status").dataset.state = kind;
}

// --- the token: in memory, or in localStorage only when the user asks -----------------------------
const saved = localStorage.getItem("sam2enc.token");
if (saved) { $("token").value = saved; $("remember").checked = true; }
$("remember").addEventListener("change", () => {
  if ($("remember").checked) localStorage.setItem("sam2enc.token", $("token").value);
  else localStorage.removeItem("sam2enc.token");
});
$("token").addEventListener("input", () => {
  if ($("remember").checked) localStorage.setItem("sam2enc.token", $("token").value);
});

// --- photo → Replicate (through the proxy) → bundle ---------------------------------------------
$("photo").addEventListener("change", async () => {
  const file = $("photo").files[0];
  if (!file) return;
  try {
    await showPhoto(file);
    setStatus("Encoding on Replicate…", "encoding");
    const { manifest, payload } = await encodeRemote(file);
    await verifyBundle(manifest, payload);
    loadBundle(manifest, payload);
  } catch (err) {
    setStatus(String(err.message || err), "error");
  }
});

async function showPhoto(file) {
  const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" }); // EXIF applied
  for (const canvas of [$("photo-canvas"), $("mask-canvas")]) {
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
  }
  const ctx = $("photo-canvas").getContext("2d");
  ctx.fillStyle = "#fff"; // transparency over white, as the encoder composites it
  ctx.fillRect(0, 0, bitmap.width, bitmap.height);
  ctx.drawImage(bitmap, 0, 0);
  clearPrompts();
}

async function api(path, init = {}) {
  const headers = { Authorization: `Bearer ${$("token").value.trim()}` };
  if (typeof init.body === "string") headers["Content-Type"] = "application/json";
  const response = await fetch(path, { ...init, headers });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`Replicate answered ${response.status}: ${body.detail || body.title || ""}`);
  return body;
}

async function encodeRemote(file) {
  const model = $("version").value.trim();
  if (!model || (model.includes("/") && !model.includes(":"))) {
    throw new Error("Give the model version: owner/name:<version id>, or the version id alone.");
  }
  const version = model.split(":").pop();
  // Uploaded first, as Replicate's own clients do: data: URIs are meant for files under 1 MB, and a
  // prediction echoes its input back on every poll.
  const form = new FormData();
  form.append("content", file, file.name || "photo");
  const upload = await api("/api/files", { method: "POST", body: form });
  const image = upload.urls.get;
  let prediction = await api("/api/predictions", { method: "POST", body: JSON.stringify({ version, input: { image } }) });
  while (!["succeeded", "failed", "canceled"].includes(prediction.status)) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    prediction = await api(`/api/predictions/${prediction.id}`);
  }
  if (prediction.status !== "succeeded") throw new Error(`The model ${prediction.status}: ${prediction.error}`);
  const files = {}; // by file name: Cog lists outputs in upload-completion order
  for (const url of prediction.output) {
    const response = await fetch(`/api/files?url=${encodeURIComponent(url)}`);
    if (!response.ok) throw new Error(`could not download ${url}`);
    files[new URL(url).pathname.split("/").pop()] = await response.arrayBuffer();
  }
  if (!files["manifest.json"] || !files["embedding.bin"]) throw new Error("the model did not return a bundle");
  return { manifest: JSON.parse(new TextDecoder().decode(files["manifest.json"])), payload: files["embedding.bin"] };
}

// --- or a bundle from disk ---------------------------------------------------------------------------
$("bundle").addEventListener("change", async () => {
  const byName = Object.fromEntries([...$("bundle").files].map((f) => [f.name, f]));
  try {
    if (!byName["manifest.json"] || !byName["embedding.bin"]) throw new Error("Choose both embedding.bin and manifest.json.");
    const manifest = JSON.parse(await byName["manifest.json"].text());
    const payload = await byName["embedding.bin"].arrayBuffer();
    await verifyBundle(manifest, payload);
    for (const canvas of [$("photo-canvas"), $("mask-canvas")]) {
      canvas.width = manifest.originalWidth;
      canvas.height = manifest.originalHeight;
    }
    const ctx = $("photo-canvas").getContext("2d");
    ctx.fillStyle = "#ddd"; // no photo in a bundle: clicks land on a grey stand-in of its size
    ctx.fillRect(0, 0, manifest.originalWidth, manifest.originalHeight);
    clearPrompts();
    loadBundle(manifest, payload);
  } catch (err) {
    setStatus(String(err.message || err), "error");
  }
});

// The checks sam2enc/bundle.py makes: format, version, layout, size and sha256.
const LAYOUT = { image_embed: [0, [1, 256, 64, 64]], high_res_feats_0: [2097152, [1, 32, 256, 256]], high_res_feats_1: [6291456, [1, 64, 128, 128]] };
async function verifyBundle(manifest, payload) {
  if (manifest.format !== "sam2enc-bundle" || manifest.version !== 1) throw new Error("manifest.json is not a version 1 sam2enc bundle");
  for (const [name, [offset, shape]] of Object.entries(LAYOUT)) {
    const spec = manifest.tensors?.[name];
    if (!spec || spec.offset !== offset || spec.dtype !== "float16" || String(spec.shape) !== String(shape)) {
      throw new Error(`the bundle's ${name} does not have the version 1 layout`);
    }
  }
  if (payload.byteLength !== 8388608 || payload.byteLength !== manifest.byteLength) throw new Error("embedding.bin has the wrong size");
  if (crypto.subtle) { // only in a secure context (localhost counts); elsewhere the size check must do
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", payload));
    const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
    if (hex !== manifest.sha256) throw new Error("embedding.bin does not match the manifest's sha256 (corrupted)");
  }
}

function loadBundle(manifest, payload) {
  state.width = manifest.originalWidth;
  state.height = manifest.originalHeight;
  setStatus("Loading the decoder…", "encoding");
  worker.postMessage({ type: "bundle", manifest, payload, backend: params.get("backend") || "auto" }, [payload]);
}

// --- clicks, shift-clicks and box drags, at most one decode per animation frame ---------------------
let dragStart = null;
function imagePoint(event) {
  const canvas = $("mask-canvas");
  return [(event.offsetX * state.width) / canvas.clientWidth, (event.offsetY * state.height) / canvas.clientHeight];
}
function dragBox(event) {
  const [x, y] = imagePoint(event);
  const [x0, y0] = dragStart;
  return Math.hypot(x - x0, y - y0) > 5 ? [Math.min(x0, x), Math.min(y0, y), Math.max(x0, x), Math.max(y0, y)] : null;
}
$("mask-canvas").addEventListener("mousedown", (e) => { dragStart = imagePoint(e); });
$("mask-canvas").addEventListener("mousemove", (e) => {
  if (!dragStart || !state.width || !dragBox(e)) return;
  state.box = dragBox(e); // the mask follows the box while it is drawn, one decode per frame at most
  request();
});
$("mask-canvas").addEventListener("mouseup", (e) => {
  if (!dragStart || !state.width) return;
  const box = dragBox(e);
  if (box) state.box = box;
  else state.points.push([...imagePoint(e), e.shiftKey ? 0 : 1]);
  dragStart = null;
  request();
});
$("reset").addEventListener("click", () => { clearPrompts(); });

function clearPrompts() {
  state.points = [];
  state.box = null;
  state.pending = null;
  $("mask-canvas").getContext("2d").clearRect(0, 0, $("mask-canvas").width, $("mask-canvas").height);
}

function request() {
  state.pending = { points: state.points.map((p) => [...p]), box: state.box && [...state.box] };
  requestAnimationFrame(flush);
}
state.idle = () => !state.busy && !state.pending; // for the browser test: the mask shows the last prompt

function flush() {
  if (state.busy || !state.pending) return;
  state.busy = true;
  worker.postMessage({ type: "decode", ...state.pending });
  state.pending = null;
}

worker.onmessage = ({ data }) => {
  if (data.type === "ready") {
    const threads = data.backend === "wasm" ? `, ${data.threads} thread${data.threads > 1 ? "s" : ""}` : "";
    setStatus(`Ready (${data.backend}${threads}; ${data.why}). Click the photo.`, "ready");
    state.backend = data.backend;
  } else if (data.type === "error") {
    state.busy = false;
    setStatus(data.message, "error");
  } else if (data.type === "mask") {
    state.busy = false;
    state.seq += 1;
    state.last = data;
    drawMask(data.mask);
    $("timing").textContent = `decoder ${data.decoderMs.toFixed(1)} ms, with upsampling ${data.totalMs.toFixed(1)} ms (${data.backend}); IoU prediction ${data.score.toFixed(3)}`;
    if (state.pending) requestAnimationFrame(flush);
  }
};

function drawMask(mask) {
  const image = new ImageData(state.width, state.height);
  for (let i = 0; i < mask.length; i++) {
    if (mask[i]) { image.data[4 * i] = 30; image.data[4 * i + 1] = 144; image.data[4 * i + 2] = 255; image.data[4 * i + 3] = 140; }
  }
  $("mask-canvas").getContext("2d").putImageData(image, 0, 0);
}

state.maskBase64 = () => {
  const mask = state.last.mask;
  let text = "";
  for (let i = 0; i < mask.length; i += 0x8000) text += String.fromCharCode(...mask.subarray(i, i + 0x8000));
  return btoa(text);
};
