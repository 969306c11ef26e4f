// A small RPC around playwright-core for the Python tests and `tools/bench_web.py`: one JSON line in
// ({code, args}: the body of an async function of (ctx, args)), one JSON line out ({ok, value|error}).
// One chromium per driver; ctx holds the page and the helpers below, shared by every call.
import readline from "node:readline";
import { chromium } from "playwright-core";

const AsyncFunction = (async () => {}).constructor;
const ctx = {
  chromium, browser: null, context: null, page: null, console: [],

  async launch({ executable, webgpu = false }) {
    ctx.launchOptions = { executablePath: executable, args: ["--headless", "--no-sandbox", "--disable-quic",
      "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
      ...(webgpu ? ["--enable-unsafe-webgpu"] : ["--disable-gpu"])] };
    ctx.browser = await chromium.launch(ctx.launchOptions);
  },

  // `profile`: a persistent profile directory, with a disk cache as a person's browser has (the
  // in-memory cache of a throwaway context keeps no entry over a few MB).
  async open(url, { width = 1400, height = 1000, mobile = false, fresh = true, profile = null } = {}) {
    if (fresh || !ctx.context) {
      if (ctx.context) await ctx.context.close();
      const options = { viewport: { width, height }, acceptDownloads: true,
        ...(mobile ? { isMobile: true, hasTouch: true, deviceScaleFactor: 1 } : {}) };
      ctx.context = profile ? await chromium.launchPersistentContext(profile, { ...ctx.launchOptions, ...options })
        : await ctx.browser.newContext(options);
    }
    ctx.page = await ctx.context.newPage();
    ctx.page.on("console", (m) => ctx.console.push(m.text()));
    ctx.page.on("pageerror", (e) => ctx.console.push(`pageerror: ${e}`));
    await ctx.page.goto(url);
    return ctx.page;
  },

  async state(name) {
    return ctx.page.evaluate((n) => {
      const s = document.querySelector("#status");
      return { status: s.textContent, state: s.dataset.state, points: window.sam2enc.points, box: window.sam2enc.box,
        ready: window.sam2enc.ready, seq: window.sam2enc.seq, dropped: window.sam2enc.dropped, idle: window.sam2enc.idle(),
        last: window.sam2enc.last, promptGen: window.sam2enc.promptGen, size: window.sam2enc.size, display: window.sam2enc.display,
        notice: document.querySelector("#notice").textContent + " " + document.querySelector("#backend-note").textContent, remote: document.querySelector("#remote-status").textContent, n };
    }, name || null);
  },

  async ready(timeout = 120000) {
    await ctx.page.waitForFunction(() => window.sam2enc.ready || document.querySelector("#status").dataset.state === "error", null, { timeout });
    return ctx.state();
  },

  // An encode pressed just now has ended: its bundle is live and ready ("Encoded in …"), or it failed.
  async encoded(timeout = 120000) {
    await ctx.page.waitForFunction(() => {
      const remote = document.querySelector("#remote-status");
      return remote.classList.contains("error") || (remote.textContent.startsWith("Encoded in") && window.sam2enc.ready);
    }, null, { timeout });
    return ctx.state();
  },

  // The mask on screen is the one for the current prompts (or there are none).
  async settled(timeout = 60000) {
    await ctx.page.waitForFunction(() => {
      const s = window.sam2enc;
      if (document.querySelector("#status").dataset.state === "error") return true;
      if (!s.idle()) return false;
      return !(s.points.length || s.box) || (s.last && s.last.promptGen === s.promptGen && s.last.kind !== "hover");
    }, null, { timeout });
    return ctx.state();
  },

  // Page coordinates of photo pixel (x, y), from the canvas's box — not from anything the page reports.
  async at(x, y) {
    const box = await ctx.page.locator("#mask-canvas").boundingBox();
    const [w, h] = await ctx.page.evaluate(() => window.sam2enc.size);
    return [box.x + (x * box.width) / w, box.y + (y * box.height) / h];
  },

  async click(x, y, { button = "left", shift = false } = {}) {
    const [px, py] = await ctx.at(x, y);
    if (shift) await ctx.page.keyboard.down("Shift");
    await ctx.page.mouse.click(px, py, { button });
    if (shift) await ctx.page.keyboard.up("Shift");
  },

  async drag(x0, y0, x1, y1, { steps = 8, outside = null } = {}) {
    const [a, b] = await ctx.at(x0, y0);
    await ctx.page.mouse.move(a, b);
    await ctx.page.mouse.down();
    const [c, d] = outside || (await ctx.at(x1, y1));
    await ctx.page.mouse.move(c, d, { steps });
    await ctx.page.mouse.up();
  },

  async download(selector, path, count = 1) {
    const files = [];
    const waiting = new Promise((resolve) => {
      let seen = 0;
      ctx.page.on("download", async function on(d) {
        const target = `${path}.${seen++}.${d.suggestedFilename()}`;
        if (seen === count) ctx.page.off("download", on);
        await d.saveAs(target);
        files.push(target);
        if (files.length === count) resolve();
      });
    });
    await ctx.page.click(selector);
    await Promise.race([waiting, new Promise((_, r) => setTimeout(() => r(new Error("no download")), 60000))]);
    return files;
  },

  // The mask canvas as one byte per display pixel: 1 where alpha > 0.
  async canvasMask() {
    return ctx.page.evaluate(() => {
      const c = document.getElementById("mask-layer");
      if (!c.width) return { width: 0, height: 0, data: "" };
      const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      const bytes = new Uint8Array(c.width * c.height);
      for (let i = 0; i < bytes.length; i++) bytes[i] = d[4 * i + 3] > 0 ? 1 : 0;
      let text = "";
      for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
      return { width: c.width, height: c.height, data: btoa(text) };
    });
  },

  // RGBA of the marker canvas at photo pixel (x, y) offset by (dx, dy) CSS pixels.
  async uiPixel(x, y, dx = 0, dy = 0) {
    return ctx.page.evaluate(([x, y, dx, dy]) => {
      const c = document.getElementById("mask-canvas");
      const k = c.width / window.sam2enc.size[0], dpr = c.width / c.getBoundingClientRect().width;
      return [...c.getContext("2d").getImageData(Math.round(x * k + dx * dpr), Math.round(y * k + dy * dpr), 1, 1).data];
    }, [x, y, dx, dy]);
  },
};

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  const { code, args } = JSON.parse(line);
  let reply;
  try {
    reply = { ok: true, value: (await new AsyncFunction("ctx", "args", code)(ctx, args)) ?? null };
  } catch (err) {
    reply = { ok: false, error: String(err?.stack || err), console: ctx.console.slice(-20) };
  }
  process.stdout.write(`${JSON.stringify(reply)}\n`);
}
// Closing can hang on a page with a request still open (a canceled prediction's last poll): give it a
// few seconds, then exit; playwright kills the browser it launched when this process exits.
const closing = Promise.all([ctx.context?.close(), ctx.browser?.close()]).catch(() => {});
await Promise.race([closing, new Promise((r) => setTimeout(r, 3000))]);
process.exit(0);
