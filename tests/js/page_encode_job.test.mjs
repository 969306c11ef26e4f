// An encode on Replicate as the page runs it (sam2enc/web/static/app/encode-job.js), DOM-free: the ticker
// and its status lines (a live photo keeps its line), Cancel (aborted, the prediction canceled on
// Replicate once), a replaced job's failure kept silent, success and failure sentences. Run by
// tests/test_page_encode_job.py.
import assert from "node:assert/strict";
import test from "node:test";
import { createEncodeJobs, TICK_MS } from "../../sam2enc/web/static/app/encode-job.js";
import { createState } from "../../sam2enc/web/static/app/state.js";

/** A page whose Replicate calls wait until the test settles them (`calls[i].resolve/reject`). */
function page() {
  const S = createState();
  const log = [];
  const calls = [];
  const tickers = new Map();
  let clock = 1000;
  let nextTicker = 1;
  const jobs = createEncodeJobs(S, {
    encodeOnReplicate: (file, version, options) => new Promise((resolve, reject) => calls.push({ file, version, options, resolve, reject })),
    cancelPrediction: (id) => log.push(["cancel", id]),
    check: async (files, job) => ({ checked: files.manifest, photo: job.photo }),
    encoded: (job, bundle, saved) => log.push(["encoded", job.file, bundle, saved.payload.length]),
    remote: (text, error = false) => log.push(["remote", text, error]),
    status: (text, kind) => log.push(["status", text, kind]),
    changed: () => log.push(["changed", Boolean(S.encode)]),
    now: () => clock,
    every: (fn, ms) => { assert.equal(ms, TICK_MS); tickers.set(nextTicker, fn); return nextTicker++; },
    stop: (handle) => tickers.delete(handle),
  });
  const advance = (ms) => { clock += ms; for (const fn of tickers.values()) fn(); };
  const files = { manifest: "{}", payload: new Uint8Array(8) };
  return { S, jobs, log, calls, tickers, advance, files };
}
const settle = () => new Promise((resolve) => setImmediate(resolve));
const options = { version: "owner/model:abc", token: "r8_x", pollMs: 0, wait: undefined };

test("with nothing live the ticker speaks on both lines; success makes the bundle live and stops it", async () => {
  const { S, jobs, log, calls, tickers, advance, files } = page();
  const done = jobs.start("photo.jpg", "decoded", options);
  assert.deepEqual([calls[0].file, calls[0].version, calls[0].options.token], ["photo.jpg", "owner/model:abc", "r8_x"]);
  calls[0].options.status("running");
  calls[0].options.note("cold start");
  calls[0].options.prediction("p1");
  advance(1500);
  assert.deepEqual(log.splice(0), [
    ["remote", "Encoding on Replicate: uploading · 0.0 s", false], ["status", "Encoding on Replicate: uploading · 0.0 s", "encoding"],
    ["changed", true],
    ["remote", "Encoding on Replicate: running (cold start) · 1.5 s", false], ["status", "Encoding on Replicate: running · 1.5 s", "encoding"],
  ]);
  advance(500);
  log.splice(0);
  calls[0].resolve(files);
  await done;
  assert.deepEqual(log, [["remote", "Encoded in 2.0 s (prediction p1).", false],
    ["encoded", "photo.jpg", { checked: "{}", photo: "decoded" }, 8], ["changed", false]]);
  assert.equal(tickers.size, 0);
  assert.equal(S.encode, null);
});

test("a live photo keeps its line: the ticker speaks in the encode box only", () => {
  const { S, jobs, log } = page();
  S.ready = true;
  jobs.start("photo.jpg", "decoded", options);
  assert.deepEqual(log.map(([what]) => what), ["remote", "changed"]);
});

test("Cancel aborts, cancels the remote prediction once and stops the ticker; the job's AbortError is not news", async () => {
  const { S, jobs, log, calls, tickers } = page();
  const done = jobs.start("photo.jpg", "decoded", options);
  calls[0].options.prediction("p9");
  log.splice(0);
  assert.equal(jobs.abandon(true), true);
  assert.equal(calls[0].options.signal.aborted, true);
  assert.equal(calls[0].options.live(), false);
  assert.equal(jobs.abandon(true), false); // nothing left to cancel
  assert.deepEqual(log, [["cancel", "p9"]]);
  assert.equal(tickers.size, 0);
  calls[0].reject(Object.assign(new Error("aborted"), { name: "AbortError" }));
  await done;
  assert.deepEqual(log, [["cancel", "p9"]]);
  assert.equal(S.encode, null);
});

test("abandoned without canceling (or before a prediction exists), nothing is sent to Replicate", () => {
  const { jobs, log, calls } = page();
  jobs.start("a.jpg", "decoded", options);
  calls[0].options.prediction("p1");
  jobs.abandon(false);
  jobs.start("b.jpg", "decoded", options);
  jobs.abandon(true); // no prediction id yet
  assert.deepEqual(log.filter(([what]) => what === "cancel"), []);
});

test("a replaced job's failure and late files are silent; the new job's failure is said once, with what is kept", async () => {
  const { S, jobs, log, calls, files } = page();
  const first = jobs.start("a.jpg", "decoded", options);
  jobs.abandon(true);
  S.ready = true;
  S.fileName = "live.jpg";
  const second = jobs.start("b.jpg", "decoded", options);
  log.splice(0);
  calls[0].reject(new Error("Replicate: the prediction failed."));
  await first;
  assert.deepEqual(log, []);
  calls[0].resolve(files); // too late as well
  calls[1].reject(new Error("Replicate: out of credit."));
  await second;
  await settle();
  assert.deepEqual(log, [["remote", "Replicate: out of credit.", true],
    ["status", "Replicate: out of credit. live.jpg and its prompts are as they were.", "error"], ["changed", false]]);
  assert.equal(S.encode, null);
});

test("a job abandoned while its bundle is checked never goes live", async () => {
  const { jobs, log, calls, files } = page();
  const done = jobs.start("a.jpg", "decoded", options);
  calls[0].resolve(files);
  await Promise.resolve();
  jobs.abandon(true);
  await done;
  assert.equal(log.some(([what]) => what === "encoded"), false);
});
