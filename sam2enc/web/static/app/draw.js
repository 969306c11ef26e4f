// Canvas drawing: the photo at display size, the mask in the chosen view, the markers and the box.
import { MARKER } from "./prompts.js";

/** The display size of a photo that must fit `availW`×`availH` CSS px, never enlarged. */
export function fit(width, height, availW, availH, dpr) {
  const scale = Math.min(availW / width, availH / height, 1);
  const cssW = Math.max(1, Math.floor(width * scale)), cssH = Math.max(1, Math.floor(height * scale));
  return { cssW, cssH, w: Math.min(width, Math.round(cssW * dpr)), h: Math.min(height, Math.round(cssH * dpr)), dpr };
}

/** Size the three canvases for `display` and paint the photo (transparency over white, as encoded). */
export function paintPhoto({ photo, mask, ui }, image, display) {
  const { cssW, cssH, w, h, dpr } = display;
  for (const [c, cw, ch] of [[photo, w, h], [mask, w, h], [ui, Math.round(cssW * dpr), Math.round(cssH * dpr)]]) {
    c.width = cw;
    c.height = ch;
    c.style.width = `${cssW}px`;
    c.style.height = `${cssH}px`;
  }
  const ctx = photo.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, w, h);
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(image, 0, 0, w, h);
}

/**
 * The mask layer in the view asked for. Overlay: every object's mask in its colour, the selected one
 * last and strongest. Cutout (the photo inside) and Erase (the photo outside) use the union of `masks`.
 * @param {{image: CanvasImageSource, color: number[], selected?: boolean}[]} masks
 */
export function renderMasks(canvas, photoCanvas, masks, view) {
  const ctx = canvas.getContext("2d");
  ctx.globalCompositeOperation = "source-over";
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!masks.length || !canvas.width) return;
  const layer = scratch(canvas.width, canvas.height);
  const lctx = layer.getContext("2d");
  if (view === "overlay") {
    for (const { image, color, selected } of masks) {
      lctx.globalCompositeOperation = "source-over";
      lctx.clearRect(0, 0, layer.width, layer.height);
      lctx.drawImage(image, 0, 0);
      lctx.globalCompositeOperation = "source-in";
      lctx.fillStyle = `rgba(${color.join(", ")}, ${selected ? 0.6 : 0.45})`;
      lctx.fillRect(0, 0, layer.width, layer.height);
      ctx.drawImage(layer, 0, 0);
    }
    return;
  }
  lctx.globalCompositeOperation = "source-over";
  lctx.clearRect(0, 0, layer.width, layer.height);
  for (const { image } of masks) lctx.drawImage(image, 0, 0); // opaque where any mask is
  if (view === "cutout") {
    ctx.drawImage(layer, 0, 0);
    ctx.globalCompositeOperation = "source-in";
    ctx.drawImage(photoCanvas, 0, 0);
  } else {
    ctx.drawImage(photoCanvas, 0, 0);
    ctx.globalCompositeOperation = "destination-out";
    ctx.drawImage(layer, 0, 0);
  }
  ctx.globalCompositeOperation = "source-over";
}

let scratchCanvas = null;
function scratch(width, height) {
  if (scratchCanvas?.width !== width || scratchCanvas?.height !== height) scratchCanvas = new OffscreenCanvas(width, height);
  return scratchCanvas;
}

/** A display-size mask (RGBA words) as an image for the mask layer. */
export function maskImage(rgba, width, height, previous) {
  const canvas = previous?.width === width && previous?.height === height ? previous : new OffscreenCanvas(width, height);
  canvas.getContext("2d").putImageData(new ImageData(new Uint8ClampedArray(rgba.buffer), width, height), 0, 0);
  return canvas;
}

/**
 * Markers: include a filled green disc with a white "+", exclude a red square with a white "−" (shape
 * and glyph, not only colour); the box a dashed outline; the keyboard cursor a yellow cross.
 */
/** Another object's prompts (not the selected one): its box thin and its clicks small, in its colour. */
function drawOther(ctx, { points, box, color }, k, dpr) {
  const rgb = `rgb(${color.join(", ")})`;
  ctx.lineWidth = 1.5 * dpr;
  if (box) {
    ctx.setLineDash([4 * dpr, 4 * dpr]);
    ctx.strokeStyle = rgb;
    ctx.strokeRect(box[0] * k, box[1] * k, (box[2] - box[0]) * k, (box[3] - box[1]) * k);
    ctx.setLineDash([]);
  }
  const r = MARKER * dpr * 0.6;
  for (const [x, y, label] of points) {
    ctx.beginPath();
    if (label) ctx.arc(x * k, y * k, r, 0, 2 * Math.PI);
    else ctx.rect(x * k - r, y * k - r, 2 * r, 2 * r);
    ctx.fillStyle = rgb;
    ctx.strokeStyle = "#fff";
    ctx.fill();
    ctx.stroke();
  }
}

export function drawPrompts(canvas, { points, box, photoWidth, dpr, cursor, others = [] }) {
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!photoWidth) return;
  const k = canvas.width / photoWidth;
  // The other objects' prompts first, smaller, in their object's colour: visible, not in the way.
  for (const other of others) drawOther(ctx, other, k, dpr);
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
  for (const [x, y, label] of points) {
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
  if (cursor) {
    const [cx, cy] = [cursor[0] * k, cursor[1] * k];
    ctx.strokeStyle = "#ff0";
    ctx.lineWidth = 2 * dpr;
    ctx.beginPath();
    ctx.moveTo(cx - 2 * r, cy); ctx.lineTo(cx + 2 * r, cy); ctx.moveTo(cx, cy - 2 * r); ctx.lineTo(cx, cy + 2 * r);
    ctx.stroke();
  }
}
