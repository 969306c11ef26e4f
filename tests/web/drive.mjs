// Drive the app in Debian's headless chromium like a person: type a token, pick a photo, click.
// Usage: node drive.mjs CONFIG_JSON  → prints one JSON line with masks, timings and loaded bytes.
import { chromium } from "playwright-core";

const config = JSON.parse(process.argv[2]);
const args = ["--headless", "--no-sandbox", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
args.push(...(config.backend === "webgpu" ? ["--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader"] : ["--disable-gpu"]));
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args });
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
const console_ = [];
page.on("console", (m) => console_.push(m.text()));
let loadedBytes = 0;
page.on("response", (r) => {
  if (!r.url().includes("/api/")) loadedBytes += Number(r.headers()["content-length"] || 0);
});
const result = { backend: config.backend, clicks: [], console: console_ };
try {
  await page.goto(`${config.url}/?backend=${config.backend}&poll=100`);
  await page.fill("#token", config.token);
  await page.fill("#version", config.version);
  await page.setInputFiles("#photo", config.photo);
  await page.waitForFunction(() => ["ready", "error"].includes(document.querySelector("#status").dataset.state), null, { timeout: 180000 });
  result.status = await page.textContent("#status");
  result.firstLoadBytes = loadedBytes;
  const canvas = await page.$("#mask-canvas");
  const box = await canvas.boundingBox();
  for (const [x, y] of config.clicks) {
    const seq = await page.evaluate(() => window.sam2enc.seq);
    await page.evaluate(() => { window.sam2enc.points = []; window.sam2enc.box = null; });
    await page.mouse.click(box.x + x, box.y + y);
    await page.waitForFunction((s) => window.sam2enc.seq > s || document.querySelector("#status").dataset.state === "error", seq, { timeout: 60000 });
    result.clicks.push(await page.evaluate(() => ({
      points: window.sam2enc.last.points, backend: window.sam2enc.last.backend,
      decoderMs: window.sam2enc.last.decoderMs, totalMs: window.sam2enc.last.totalMs, mask: window.sam2enc.maskBase64(),
    })));
  }
  if (config.screenshot) await page.screenshot({ path: config.screenshot });
} catch (err) {
  result.error = String(err);
  result.status = await page.textContent("#status").catch(() => null);
}
await browser.close();
console.log(JSON.stringify(result));
