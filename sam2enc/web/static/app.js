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
  const headers = { Authorization: `Bearer ${$("token").value.trim()}`, "Content-Type": "application/json" };
  const response = await fetch(path, { ...init, headers });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`Replicate answered ${response.status}: ${body.detail || body.title || ""}`);
  return body;
}

async function encodeRemote(file) {
  const image = await new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new Error("could not read the photo"));
    reader.readAsDataURL(file);
  });
  const version = $("version").value.trim().split(":").pop();
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
  if (!byName["manifest.json"] || !byName["embedding.bin"]) {
    setStatus("Choose both embedding.bin and manifest.json.", "error");
    return;
  }
  const manifest = JSON.parse(await byName["manifest.json"].text());
  for (const canvas of [$("photo-canvas"), $("mask-canvas")]) {
    canvas.width = manifest.originalWidth;
    canvas.height = manifest.originalHeight;
  }
  const ctx = $("photo-canvas").getContext("2d");
  ctx.fillStyle = "#ddd";
  ctx.fillRect(0, 0, manifest.originalWidth, manifest.originalHeight);
  clearPrompts();
  loadBundle(manifest, await byName["embedding.bin"].arrayBuffer());
});

function loadBundle(manifest, payload) {
  if (manifest.format !== "sam2enc-bundle" || manifest.version !== 1) throw new Error("not a version 1 bundle");
  if (payload.byteLength !== manifest.byteLength) throw new Error("embedding.bin has the wrong size");
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
$("mask-canvas").addEventListener("mousedown", (e) => { dragStart = imagePoint(e); });
$("mask-canvas").addEventListener("mouseup", (e) => {
  if (!dragStart || !state.width) return;
  const [x, y] = imagePoint(e);
  const [x0, y0] = dragStart;
  dragStart = null;
  if (Math.hypot(x - x0, y - y0) > 5) {
    state.box = [Math.min(x0, x), Math.min(y0, y), Math.max(x0, x), Math.max(y0, y)];
  } else {
    state.points.push([x, y, e.shiftKey ? 0 : 1]);
  }
  request();
});
$("reset").addEventListener("click", () => { clearPrompts(); });

function clearPrompts() {
  state.points = [];
  state.box = null;
  $("mask-canvas").getContext("2d").clearRect(0, 0, $("mask-canvas").width, $("mask-canvas").height);
}

function request() {
  state.pending = { points: state.points.map((p) => [...p]), box: state.box && [...state.box] };
  requestAnimationFrame(flush);
}

function flush() {
  if (state.busy || !state.pending) return;
  state.busy = true;
  worker.postMessage({ type: "decode", ...state.pending });
  state.pending = null;
}

worker.onmessage = ({ data }) => {
  if (data.type === "ready") {
    setStatus(`Ready (${data.backend}, ${data.threads} thread${data.threads > 1 ? "s" : ""}). Click the photo.`, "ready");
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
