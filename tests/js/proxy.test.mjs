// The hosted proxy (package.json "exports"["./proxy"]) against the one policy table
// (tests/fixtures/token-policy.json), with a recording fetch: every outgoing request is recorded, and a
// refused request must record none. Run by tests/test_policy.py (`node --test`), so pytest counts it.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import { fileHostAllowed, tokenAllowed } from "../../sam2enc/web/edge/policy.js";

const root = new URL("../../", import.meta.url);
const pkg = JSON.parse(readFileSync(new URL("package.json", root), "utf8"));
const { default: handler } = await import(new URL(pkg.exports["./proxy"].default, root).href);
const policy = JSON.parse(readFileSync(new URL("tests/fixtures/token-policy.json", root), "utf8"));
const TOKEN = policy.token;
const SELF = "https://proxy.example";

const sent = []; // what reached "Replicate": {url, method, headers, body}
let answer = () => new Response('{"ok": true}', { status: 200, headers: { "Content-Type": "application/json" } });
const logs = [];
const realFetch = globalThis.fetch;
const realLog = console.log;

before(() => {
  globalThis.fetch = async (url, init = {}) => {
    const headers = Object.fromEntries(new Headers(init.headers));
    const body = init.body === undefined ? "" : new TextDecoder().decode(init.body);
    const request = { url: String(url), method: init.method || "GET", headers, body, redirect: init.redirect };
    sent.push(request);
    return answer(request);
  };
  console.log = (...args) => logs.push(args.join(" "));
});

after(() => {
  globalThis.fetch = realFetch;
  console.log = realLog;
  assert.ok(logs.length > 0, "the handler logs one line per request");
  assert.ok(!logs.join("\n").includes(TOKEN), "the token appears in no log line");
});

function env(apiBase = policy.api_base) {
  return { REPLICATE_API_BASE: apiBase, ALLOWED_ORIGINS: `https://other.example, ${policy.origins.allowed}` };
}

/** Call the handler as a browser would; the answer's text, checked for the token. */
async function call(path, { method = "GET", body, token = true, origin, type, headers = {}, apiBase } = {}) {
  const init = { method, headers: { ...headers } };
  if (token) init.headers.Authorization = `Bearer ${TOKEN}`;
  if (origin) init.headers.Origin = policy.origins[origin] ?? origin;
  if (type) init.headers["Content-Type"] = type;
  if (body !== undefined) {
    init.body = body;
    init.duplex = "half";
  }
  sent.length = 0;
  const response = await handler.fetch(new Request(`${SELF}${path}`, init), env(apiBase));
  const text = await response.text();
  assert.ok(!text.includes(TOKEN), "the token is in no answer");
  assert.ok(![...response.headers].some(([, v]) => v.includes(TOKEN)), "nor in its headers");
  return { status: response.status, headers: response.headers, text };
}

function refusedByTheProxy(result, status) {
  assert.equal(result.status, status);
  assert.equal(result.headers.get("Content-Type"), "application/problem+json");
  assert.equal(JSON.parse(result.text).source, "proxy");
  assert.deepEqual(sent, [], "nothing may be fetched");
}

for (const route of policy.routes.cases) {
  const name = `${route.method} ${route.path}${route.origin ? ` from ${route.origin}` : ""}${route.token === false ? " without a token" : ""}`;
  test(`route: ${name} -> ${route.forward ? `${route.forward.method} ${route.forward.path}` : route.status}`, async () => {
    const result = await call(route.path, {
      method: route.method,
      body: route.body,
      token: route.token !== false,
      origin: route.origin,
      type: route.content_type,
    });
    if (!route.forward) return refusedByTheProxy(result, route.status);
    assert.equal(result.status, 200);
    assert.equal(result.text, '{"ok": true}', "the upstream's answer passes through");
    assert.equal(sent.length, 1, "exactly one upstream request");
    const [request] = sent;
    assert.equal(request.url, `${policy.api_base}${route.forward.path}`);
    assert.equal(request.method, route.forward.method);
    assert.equal(request.headers.authorization, route.token === false ? undefined : `Bearer ${TOKEN}`);
    assert.equal(request.body, route.body ?? "", "the body unchanged");
    assert.equal(request.redirect, "manual", "an API call never follows a redirect");
    if (route.content_type) assert.equal(request.headers["content-type"], route.content_type);
    for (const [header, value] of Object.entries(route.forward.headers ?? {})) {
      assert.equal(request.headers[header.toLowerCase()], value);
    }
    if (route.origin === "allowed") assert.equal(result.headers.get("Access-Control-Allow-Origin"), policy.origins.allowed);
  });
}

for (const download of policy.downloads.cases) {
  const apiBase = download.api_base ?? policy.api_base;
  test(`download: ${download.url || "(no url)"} via ${apiBase}: ${download.fetched ? "fetched" : "refused"}, ${download.token ? "token on retry" : "never the token"}`, async () => {
    assert.equal(fileHostAllowed(download.url, apiBase), download.fetched);
    assert.equal(tokenAllowed(download.url, apiBase), download.token);
    answer = (request) =>
      request.headers.authorization
        ? new Response("file", { status: 200 })
        : new Response('{"detail": "needs the token", "status": 401}', { status: 401, headers: { "Content-Type": "application/problem+json" } });
    try {
      const result = await call(`/api/files?url=${encodeURIComponent(download.url)}`, { apiBase });
      if (!download.fetched) return refusedByTheProxy(result, 403);
      const href = new URL(download.url).href;
      assert.equal(sent[0].url, href);
      assert.equal(sent[0].headers.authorization, undefined, "first without the token");
      if (download.token) {
        assert.deepEqual(sent.map((r) => [r.url, r.headers.authorization]), [[href, undefined], [href, `Bearer ${TOKEN}`]]);
        assert.deepEqual([result.status, result.text], [200, "file"]);
      } else {
        assert.equal(sent.length, 1, "no retry with the token");
        assert.equal(result.status, 401);
      }
    } finally {
      answer = () => new Response('{"ok": true}', { status: 200, headers: { "Content-Type": "application/json" } });
    }
  });
}

test("an output on pbxt.replicate.delivery that is pre-signed is fetched once, without the token", async () => {
  answer = () => new Response("bytes", { status: 200 });
  const url = "https://pbxt.replicate.delivery/abc/embedding.bin";
  const result = await call(`/api/files?url=${encodeURIComponent(url)}`);
  assert.deepEqual([result.status, result.text], [200, "bytes"]);
  assert.deepEqual(sent.map((r) => [r.url, r.headers.authorization]), [[url, undefined]]);
});

test("an upstream 401 passes through unchanged", async () => {
  const problem = '{"title": "Unauthenticated", "detail": "You did not pass a valid authentication token", "status": 401}';
  answer = () => new Response(problem, { status: 401, headers: { "Content-Type": "application/problem+json" } });
  for (const [path, method, body] of [["/api/predictions", "POST", '{"version": "v", "input": {}}'], ["/api/predictions/abc", "GET"], ["/api/files", "POST"]]) {
    const result = await call(path, { method, body: body ?? (method === "POST" ? "--x--" : undefined), type: path === "/api/files" ? "multipart/form-data; boundary=x" : undefined });
    assert.deepEqual([result.status, result.headers.get("Content-Type"), result.text], [401, "application/problem+json", problem]);
    assert.equal(sent.length, 1);
  }
});

test("a well-formed Prefer: wait is passed on when a prediction is created; others are dropped", async () => {
  answer = () => new Response("{}", { status: 201, headers: { "Content-Type": "application/json" } });
  for (const [prefer, forwarded] of [["wait", "wait"], ["wait=5", "wait=5"], ["wait=60", "wait=60"], ["wait=61", undefined], ["wait=0", undefined], ["respond-async", undefined], ["wait=5, x=1", undefined]]) {
    const result = await call("/api/predictions", { method: "POST", body: "{}", headers: { Prefer: prefer } });
    assert.equal(result.status, 201);
    assert.equal(sent[0].headers.prefer, forwarded, prefer);
  }
  await call("/api/predictions/abc", { headers: { Prefer: "wait=5" } });
  assert.equal(sent[0].headers.prefer, undefined, "only on create");
});

test("Cancel-After follows env.CANCEL_AFTER (0: none)", async () => {
  for (const [value, header] of [["30", "30s"], ["0", undefined]]) {
    sent.length = 0;
    await handler.fetch(new Request(`${SELF}/api/predictions`, { method: "POST", body: "{}" }), { ...env(), CANCEL_AFTER: value });
    assert.equal(sent[0].headers["cancel-after"], header);
  }
});

test("redirects: an API call follows none; a download follows one only to an allowed host, without the token", async () => {
  answer = () => new Response(null, { status: 302, headers: { Location: "https://replicate.delivery/other" } });
  let result = await call("/api/predictions/abc");
  assert.equal(result.status, 502);
  assert.equal(sent.length, 1);
  answer = () => new Response(null, { status: 302, headers: { Location: "https://evil.example/x" } });
  result = await call(`/api/files?url=${encodeURIComponent("https://replicate.delivery/a")}`);
  assert.equal(result.status, 502);
  assert.deepEqual(sent.map((r) => r.url), ["https://replicate.delivery/a"]);
  answer = (request) =>
    request.url.endsWith("/a")
      ? new Response(null, { status: 302, headers: { Location: "https://pbxt.replicate.delivery/b" } })
      : request.headers.authorization
        ? new Response("b", { status: 200 })
        : new Response("", { status: 403 });
  result = await call(`/api/files?url=${encodeURIComponent("https://replicate.delivery/a")}`);
  assert.deepEqual([result.status, result.text], [200, "b"]);
  assert.deepEqual(sent.map((r) => [r.url, r.headers.authorization]), [
    ["https://replicate.delivery/a", undefined],
    ["https://pbxt.replicate.delivery/b", undefined],
    ["https://pbxt.replicate.delivery/b", `Bearer ${TOKEN}`],
  ]);
  assert.ok(sent.every((r) => r.redirect === "manual"));
});

test("bodies over 100 MB are refused as the proxy's own limit; 100 MB passes", async () => {
  answer = () => new Response("{}", { status: 201, headers: { "Content-Type": "application/json" } });
  const megabyte = new Uint8Array(1_000_000);
  const stream = (bytes) =>
    new ReadableStream({
      pull(controller) {
        const n = Math.min(bytes, megabyte.byteLength);
        bytes -= n;
        if (n) controller.enqueue(megabyte.subarray(0, n));
        else controller.close();
      },
    });
  const post = (bytes) =>
    handler.fetch(new Request(`${SELF}/api/files`, { method: "POST", body: stream(bytes), duplex: "half", headers: { "Content-Type": "multipart/form-data; boundary=x" } }), env());
  sent.length = 0;
  const big = await post(100_000_000 + 64 * 1024 + 1);
  assert.equal(big.status, 413);
  assert.equal((await big.json()).source, "proxy");
  assert.deepEqual(sent, []);
  const fits = await post(100_000_000);
  assert.equal(fits.status, 201);
  assert.equal(sent.length, 1);
});

test("a preflight from an allowed origin gets CORS; from another origin, 403", async () => {
  let result = await call("/api/predictions", { method: "OPTIONS", token: false, origin: "allowed" });
  assert.equal(result.status, 204);
  assert.equal(result.headers.get("Access-Control-Allow-Origin"), policy.origins.allowed);
  assert.match(result.headers.get("Access-Control-Allow-Headers"), /Authorization/);
  result = await call("/api/predictions", { method: "OPTIONS", token: false, origin: "other" });
  refusedByTheProxy(result, 403);
  answer = () => new Response("{}", { status: 200, headers: { "Content-Type": "application/json" } });
  result = await call("/api/predictions/abc", { origin: SELF });
  assert.equal(result.status, 200, "its own origin is always allowed");
});

test("the log line is method, path and status: no query string, no header", async () => {
  logs.length = 0;
  await call(`/api/files?url=${encodeURIComponent(`https://example.com/${TOKEN}`)}`);
  assert.deepEqual(logs, ["GET /api/files 403"]);
});
