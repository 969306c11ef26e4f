// Drive the app in Debian's headless chromium like a person: token, photo (or a bundle from disk),
// clicks, shift-clicks and box drags. Usage: node drive.mjs CONFIG_JSON → one JSON line on stdout with
// every decoded prompt (points, box, mask, decoder time), the status lines and the first-load bytes.
import { chromium } from "playwright-core";

const config = JSON.parse(process.argv[2]);
const args = ["--headless", "--no-sandbox", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
args.push(...(config.webgpu ? ["--enable-unsafe-webgpu"] : ["--disable-gpu"]));
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args });
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
const result = { pages: [], console: [] };
page.on("console", (m) => result.console.push(m.text()));
let loadedBytes = 0;
page.on("response", (r) => {
  if (!r.url().includes("/api/")) loadedBytes += Number(r.headers()["content-length"] || 0);
});

async function settled(timeout) {
  await page.waitForFunction(() => ["ready", "error"].includes(document.querySelector("#status").dataset.state), null, { timeout });
  return page.textContent("#status");
}

async function act(action) {
  if (action.reset) await page.click("#reset");
  const box = await (await page.$("#mask-canvas")).boundingBox(); // read each time: the page may scroll
  const seq = await page.evaluate(() => window.sam2enc.seq);
  if (action.click) {
    const [x, y] = action.click;
    if (action.shift) await page.keyboard.down("Shift");
    await page.mouse.click(box.x + x, box.y + y);
    if (action.shift) await page.keyboard.up("Shift");
  } else {
    const [x0, y0, x1, y1] = action.drag;
    await page.mouse.move(box.x + x0, box.y + y0);
    await page.mouse.down();
    await page.mouse.move(box.x + x1, box.y + y1, { steps: 8 });
    await page.mouse.up();
  }
  await page.waitForFunction(
    (s) => (window.sam2enc.seq > s && window.sam2enc.idle()) || document.querySelector("#status").dataset.state === "error",
    seq, { timeout: config.clickTimeout || 60000 });
  return page.evaluate(() => ({
    points: window.sam2enc.last.points, box: window.sam2enc.last.box, backend: window.sam2enc.last.backend,
    decoderMs: window.sam2enc.last.decoderMs, totalMs: window.sam2enc.last.totalMs, mask: window.sam2enc.maskBase64(),
  }));
}

try {
  for (const visit of config.visits) {
    const record = { backend: visit.backend, decodes: [] };
    result.pages.push(record);
    loadedBytes = 0;
    await page.goto(`${config.url}/?backend=${visit.backend}&poll=100`);
    if (visit.photo) {
      await page.fill("#token", config.token);
      await page.fill("#version", config.version);
      await page.setInputFiles("#photo", visit.photo);
    } else {
      await page.setInputFiles("#bundle", visit.bundle);
    }
    record.status = await settled(180000);
    record.firstLoadBytes = loadedBytes;
    if (record.status.startsWith("Ready")) {
      for (const action of visit.actions) record.decodes.push(await act(action));
      if (visit.screenshot) await page.screenshot({ path: visit.screenshot, fullPage: true });
    }
  }
} catch (err) {
  result.error = String(err);
  result.status = await page.textContent("#status").catch(() => null);
}
await browser.close();
console.log(JSON.stringify(result));
