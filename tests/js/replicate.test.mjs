// The page's calls through the token proxy (sam2enc/web/static/app/replicate.js) wait as
// tests/fixtures/token-policy.json's "answers" say, as sam2enc/client.py does: Retry-After in seconds or
// as an HTTP date, else 0.5 s doubling; a create is not repeated on a 5xx, nor the proxy's own refusal;
// a photo the proxy's host refuses as too large is said so in one sentence. fetch and setTimeout are
// stand-ins: no wait is slept. Run by tests/test_policy.py (`node --test`), so pytest counts it.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";

const root = new URL("../../", import.meta.url);
const policy = JSON.parse(readFileSync(new URL("tests/fixtures/token-policy.json", root), "utf8"));
const replicate = await import(new URL("sam2enc/web/static/app/replicate.js", root).href);
const { api, encodeOnReplicate, retryDelay, RETRIES, useProxy } = replicate;

const PROXY = "https://proxy.example/api/";
const realFetch = globalThis.fetch;
const realSetTimeout = globalThis.setTimeout;
let answers = []; // what the proxy answers, in turn; then {}
const sent = [];
const waits = []; // ms the page waited

before(() => {
  useProxy(PROXY);
  globalThis.fetch = async (url, init = {}) => {
    sent.push({ url: String(url), method: init.method || "GET" });
    const next = answers.shift() ?? { status: 200, body: {} };
    const headers = { "Content-Type": next.status < 400 ? "application/json" : "application/problem+json", ...(next.headers || {}) };
    return new Response(JSON.stringify(next.body ?? {}), { status: next.status, headers });
  };
  globalThis.setTimeout = recordWaits;
});

/** In place of setTimeout: a wait the page asks for is recorded and over at once. */
function recordWaits(fn, ms) {
  waits.push(ms);
  queueMicrotask(fn);
  return 0;
}

after(() => {
  globalThis.fetch = realFetch;
  globalThis.setTimeout = realSetTimeout;
});

function reset(list) {
  answers = list;
  sent.length = 0;
  waits.length = 0;
}

for (const passed of policy.answers.cases.filter((c) => !c.path.startsWith("/api/files"))) {
  const { status, retry_after: retryAfter } = passed.answer;
  const wait = passed.wait === undefined ? "not asked again" : passed.wait === null ? "0.5 s, its own backoff" : `${passed.wait} s`;
  test(`answers: ${passed.method} ${passed.path} ${status} (Retry-After: ${retryAfter ?? "none"}): ${wait}`, async () => {
    reset([{ status, headers: retryAfter ? { "Retry-After": retryAfter } : {}, body: { status, detail: "throttled" } }]);
    const notes = [];
    const call = api(passed.path.replace(/^\/api\//, ""), { token: "t", method: passed.method, body: passed.body, onNote: (n) => notes.push(n) });
    if (passed.wait === undefined) {
      await assert.rejects(call, (err) => err.status === status && /Replicate refused/.test(err.message));
      assert.deepEqual(waits, []);
      assert.equal(sent.length, 1);
      return;
    }
    assert.deepEqual(await call, {});
    assert.deepEqual(waits, [1000 * (passed.wait ?? 0.5)]);
    assert.equal(sent.length, 2);
    assert.match(notes[0], /retrying in/);
  });
}

test("the backoff without Retry-After is client.py's: 0.5 s doubling; a date in the future counts down", () => {
  assert.deepEqual([0, 1, 2, 3].map((attempt) => retryDelay(null, attempt)), [0.5, 1, 2, 4]);
  assert.equal(retryDelay("0", 3), 0, "Retry-After: 0 means now, not the backoff");
  const soon = new Date(Date.now() + 3000).toUTCString();
  assert.ok(retryDelay(soon, 0) > 1.5 && retryDelay(soon, 0) <= 3);
  assert.equal(retryDelay("soon", 1), 1, "unreadable: the backoff");
});

test(`a 429 is asked again at most ${RETRIES} times, then said in one sentence`, async () => {
  reset(Array.from({ length: RETRIES + 1 }, () => ({ status: 429, headers: { "Retry-After": "1" }, body: { detail: "throttled" } })));
  await assert.rejects(api("predictions/abc", { token: "t" }), /Replicate refused Replicate \(429\): throttled/);
  assert.equal(sent.length, RETRIES + 1);
  assert.deepEqual(waits, Array(RETRIES).fill(1000));
});

test("the proxy's own 502 (it could not reach Replicate) is not asked again", async () => {
  reset([{ status: 502, body: { detail: "the upstream could not be reached", source: "proxy", upstream: "https://api.replicate.com/v1" } }]);
  await assert.rejects(api("predictions/abc", { token: "t", what: "the status request" }), /could not be reached for the status request/);
  assert.equal(sent.length, 1);
});

test("a Cancel during a wait ends it at once", async () => {
  globalThis.setTimeout = realSetTimeout; // a real 60 s wait this time
  try {
    reset([{ status: 429, headers: { "Retry-After": "60" }, body: {} }]);
    const controller = new AbortController();
    const call = api("predictions/abc", { token: "t", signal: controller.signal });
    await new Promise((resolve) => realSetTimeout(resolve, 20));
    const started = Date.now();
    controller.abort();
    await assert.rejects(call, { name: "AbortError" });
    assert.ok(Date.now() - started < 1000);
  } finally {
    globalThis.setTimeout = recordWaits;
  }
});

function job() {
  const statuses = [];
  return { token: "t", live: () => true, status: (s) => statuses.push(s), note: () => {}, prediction: () => {}, statuses };
}

test("a photo the proxy's host refuses as too large (413, not the proxy's own) is said so, with its size", async () => {
  const photo = new File([new Uint8Array(6_200_000)], "big.jpg", { type: "image/jpeg" });
  reset([{ status: 413, body: {} }]);
  await assert.rejects(encodeOnReplicate(photo, "me/sam2enc:abc123", job()), /The 6\.2 MB photo is over the upload limit of the token proxy's host \(Vercel functions take 4\.5 MB\)/);
  reset([{ status: 413, body: { detail: "over 100 MB", source: "proxy" } }]);
  await assert.rejects(encodeOnReplicate(photo, "me/sam2enc:abc123", job()), /The local proxy refused the photo upload \(413\)/);
});

test("no readable answer to a large upload from another origin: the host's limit is named as the likely cause", async () => {
  const photo = new File([new Uint8Array(6_200_000)], "big.jpg", { type: "image/jpeg" });
  globalThis.fetch = async () => {
    throw new TypeError("Failed to fetch");
  };
  await assert.rejects(encodeOnReplicate(photo, "me/sam2enc:abc123", job()), /could not be reached with this 6\.2 MB photo; if it runs on Vercel/);
  const small = new File([new Uint8Array(1000)], "small.jpg", { type: "image/jpeg" });
  await assert.rejects(encodeOnReplicate(small, "me/sam2enc:abc123", job()), /The token proxy at https:\/\/proxy\.example could not be reached: check the network/);
});
