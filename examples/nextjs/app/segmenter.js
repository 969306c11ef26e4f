// The decoder, the bundle and the prompts on a canvas, without React: pointer events in, masks drawn.
// "sam2enc" is imported on first use, in the browser: Next.js prerenders the page without it.

async function fetched(url, as) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url} could not be fetched (HTTP ${response.status})`);
  return response[as]();
}

export class Segmenter {
  /** Load the decoder (WASM; `executionProviders: ["webgpu", "wasm"]` for WebGPU), the bundle and the photo. */
  static async open({ canvas, decoder, bundle, photo, onMask, onError }) {
    const sam2enc = await import("sam2enc");
    const folder = bundle.href.endsWith("/") ? bundle : new URL(`${bundle.href}/`);
    const [loaded, opened, image] = await Promise.all([
      sam2enc.loadDecoder(decoder),
      Promise.all([fetched(new URL("manifest.json", folder), "text"), fetched(new URL("embedding.bin", folder), "arrayBuffer")])
        .then(([manifest, embedding]) => sam2enc.openBundle(manifest, embedding)),
      photo ? fetched(photo, "blob").then((blob) => createImageBitmap(blob, { imageOrientation: "from-image" })) : null,
    ]);
    return new Segmenter(sam2enc, canvas, loaded, opened, image, onMask, onError);
  }

  constructor(sam2enc, canvas, decoder, bundle, photo, onMask, onError) {
    Object.assign(this, { sam2enc, canvas, decoder, bundle, photo, onMask, onError });
    this.prompts = { points: [], box: null };
    this.result = null;
    this.seq = 0;
    this.queue = Promise.resolve();
    canvas.width = bundle.width;
    canvas.height = bundle.height;
    this.listen();
    this.draw();
  }

  /** Pointer → prompts in photo pixels: a click adds a point (Shift or right button: exclude), a drag a box. */
  listen() {
    const { canvas } = this;
    const pixel = (event) => {
      const rect = canvas.getBoundingClientRect();
      const x = ((event.clientX - rect.left) * canvas.width) / rect.width;
      const y = ((event.clientY - rect.top) * canvas.height) / rect.height;
      return [Math.min(Math.max(x, 0), canvas.width), Math.min(Math.max(y, 0), canvas.height)];
    };
    let down = null;
    canvas.oncontextmenu = (event) => event.preventDefault();
    canvas.onpointerdown = (event) => {
      canvas.setPointerCapture(event.pointerId);
      down = { at: pixel(event), exclude: event.shiftKey || event.button === 2 };
    };
    canvas.onpointerup = (event) => {
      if (!down) return;
      const [x0, y0] = down.at, [x1, y1] = pixel(event);
      if (Math.hypot(x1 - x0, y1 - y0) > 4) {
        this.prompts.box = [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)];
      } else {
        this.prompts.points.push([x0, y0, down.exclude ? 0 : 1]);
      }
      down = null;
      this.update();
    };
  }

  clear() {
    this.prompts = { points: [], box: null };
    this.update();
  }

  /** Decodes run one at a time, in order; each answer is drawn and handed on as a PNG's object URL. */
  update() {
    this.queue = this.queue.then(async () => {
      const { points, box } = this.prompts;
      this.result = points.length || box ? await this.sam2enc.segment(this.decoder, this.bundle, this.prompts) : null;
      this.seq += 1;
      this.draw();
      if (this.url) URL.revokeObjectURL(this.url);
      const png = this.result && (await this.sam2enc.maskToPng(this.result.mask, this.result.width, this.result.height));
      this.url = png ? URL.createObjectURL(new Blob([png], { type: "image/png" })) : null;
      this.onMask(this.url);
    }).catch((err) => this.onError(err.message));
  }

  draw() {
    const { canvas, photo, result, prompts } = this;
    const context = canvas.getContext("2d");
    context.clearRect(0, 0, canvas.width, canvas.height);
    if (photo) context.drawImage(photo, 0, 0);
    if (result) {
      const overlay = context.getImageData(0, 0, canvas.width, canvas.height);
      for (let i = 0; i < result.mask.length; i++) if (result.mask[i]) overlay.data.set([30, 144, 255, 255], 4 * i);
      context.putImageData(overlay, 0, 0);
    }
    for (const [x, y, label] of prompts.points) {
      context.fillStyle = label ? "lime" : "red";
      context.fillRect(x - 4, y - 4, 8, 8);
    }
    if (prompts.box) context.strokeRect(prompts.box[0], prompts.box[1], prompts.box[2] - prompts.box[0], prompts.box[3] - prompts.box[1]);
  }

  /** For tests and the console: the prompts, how many answers were drawn, the last mask, any prompt decoded. */
  hook() {
    const self = this;
    return {
      backend: this.decoder.backend,
      get prompts() { return structuredClone(self.prompts); },
      get seq() { return self.seq; },
      mask: () => self.result && { width: self.result.width, height: self.result.height, mask: self.result.mask },
      segment: (prompt) => self.sam2enc.segment(self.decoder, self.bundle, prompt),
    };
  }

  dispose() {
    this.queue.then(() => this.decoder.dispose());
  }
}
