// The hosted proxy (package.json "exports"["./proxy"]) against the one policy table
// (tests/fixtures/token-policy.json: routes, downloads, redirects, answers), with a recording fetch:
// every outgoing request is recorded, and a refused request must record none; and its bodies streamed
// both ways. Run by tests/test_policy.py (`node --test`), so pytest counts it.
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
    const request = { url: String(url), method: init.method || "GET", headers, redirect: init.redirect, stream: init.body };
    sent.push(request);
    // Read here unless the answer takes the stream itself (the streaming tests).
    request.body = init.body === undefined || answer.streams ? "" : await new Response(init.body).text();
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
    // As a browser sends a string or FormData body: with its length.
    if (typeof body === "string") init.headers["Content-Length"] = String(new TextEncoder().encode(body).byteLength);
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

/** A redirect case's upstream answer for `request` (tests/fixtures/token-policy.json "redirects"). */
function scripted(redirect, request) {
  const answers = redirect.upstream[request.url];
  if (!answers) return new Response("file", { status: 200, headers: { "Content-Type": "application/octet-stream" } });
  const scripted = answers[request.headers.authorization ? 1 : 0];
  const [status, location] = typeof scripted === "number" ? [scripted, null] : scripted;
  if (status === 200) return new Response("file", { status: 200 });
  const headers = { "Content-Type": "application/problem+json" };
  if (location !== null) headers.Location = location;
  return new Response(JSON.stringify({ status }), { status, headers });
}

for (const redirect of policy.redirects.cases) {
  test(`redirect: ${redirect.note}: ${redirect.result}`, async () => {
    answer = (request) => scripted(redirect, request);
    const result = await call(`/api/files?url=${encodeURIComponent(redirect.url)}`, { apiBase: redirect.api_base ?? policy.api_base });
    assert.deepEqual(sent.map((r) => [r.url, r.headers.authorization !== undefined]), redirect.requests);
    assert.ok(sent.every((r) => [undefined, `Bearer ${TOKEN}`].includes(r.headers.authorization) && r.redirect === "manual"));
    if (redirect.result === "refused") {
      assert.equal(result.status, 502);
      assert.equal(JSON.parse(result.text).source, "proxy");
    } else {
      assert.equal(result.status, redirect.result);
    }
  });
}

for (const passed of policy.answers.cases) {
  const { status, retry_after: retryAfter } = passed.answer;
  test(`answer: ${passed.method} ${passed.path.split("?")[0]} ${status} (Retry-After: ${retryAfter ?? "none"}) passes as it came, exposed to an allowed page`, async () => {
    const problem = JSON.stringify({ status, detail: "throttled" });
    answer = () => new Response(problem, { status, headers: { "Content-Type": "application/problem+json", ...(retryAfter ? { "Retry-After": retryAfter } : {}) } });
    const result = await call(passed.path, { method: passed.method, body: passed.body, origin: "allowed" });
    assert.deepEqual([result.status, result.headers.get("Content-Type"), result.text], [status, "application/problem+json", problem]);
    assert.equal(result.headers.get("Retry-After"), retryAfter ?? null);
    assert.equal(result.headers.get("Access-Control-Allow-Origin"), policy.origins.allowed);
    assert.ok(result.headers.get("Access-Control-Expose-Headers").split(/,\s*/).includes("Retry-After"));
    assert.equal(sent.length, 1, "not repeated by the proxy");
  });
}

test("an output on pbxt.replicate.delivery that is pre-signed is fetched once, without the token", async () => {
  answer = () => new Response("bytes", { status: 200 });
  const url = "https://pbxt.replicate.delivery/abc/embedding.bin";
  const result = await call(`/api/files?url=${encodeURIComponent(url)}`);
  assert.deepEqual([result.status, result.text], [200, "bytes"]);
  assert.deepEqual(sent.map((r) => [r.url, r.headers.authorization]), [[url, undefined]]);
});

test("GET /api/ answers the page's probe itself: 200, nothing sent upstream, as the Python proxy answers", async () => {
  const result = await call("/api/");
  assert.deepEqual([result.status, JSON.parse(result.text)], [200, { source: "proxy", proxy: "sam2enc" }]);
  assert.equal(sent.length, 0);
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
    const request = new Request(`${SELF}/api/predictions`, { method: "POST", body: "{}", headers: { "Content-Length": "2" } });
    await handler.fetch(request, { ...env(), CANCEL_AFTER: value });
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

/** A body of `bytes` zero bytes, made 1 MB at a time as it is read; `pulled()`: how many bytes so far. */
function zeros(bytes) {
  const megabyte = new Uint8Array(1_000_000);
  let pulled = 0;
  const stream = new ReadableStream({
    pull(controller) {
      const n = Math.min(bytes - pulled, megabyte.byteLength);
      pulled += n;
      if (n) controller.enqueue(megabyte.subarray(0, n));
      else controller.close();
    },
  }, { highWaterMark: 0 }); // made only when read
  return { stream, pulled: () => pulled };
}

function upload(body, length) {
  const headers = { "Content-Type": "multipart/form-data; boundary=x" };
  if (length !== undefined) headers["Content-Length"] = String(length);
  return handler.fetch(new Request(`${SELF}/api/files`, { method: "POST", body, duplex: "half", headers }), env());
}

test("an upload over 100 MB is refused by its Content-Length before a byte is read; one without a length, 411", async () => {
  for (const [length, status] of [[100_000_000 + 64 * 1024 + 1, 413], [undefined, 411], ["12abc", 400]]) {
    const body = zeros(2_000_000);
    sent.length = 0;
    const refused = await upload(body.stream, length);
    assert.equal(refused.status, status);
    assert.equal((await refused.json()).source, "proxy");
    assert.deepEqual(sent, []);
    assert.equal(body.pulled(), 0, "nothing read");
  }
});

test("an upload streams: the upstream request starts before the body is read, with its Content-Length", async () => {
  const size = 100_000_000;
  const body = zeros(size);
  let pulledAtFetch = -1;
  let forwarded = 0;
  answer = async (request) => {
    pulledAtFetch = body.pulled();
    for await (const chunk of request.stream) forwarded += chunk.byteLength;
    return new Response("{}", { status: 201, headers: { "Content-Type": "application/json" } });
  };
  answer.streams = true;
  sent.length = 0;
  const fits = await upload(body.stream, size);
  assert.equal(fits.status, 201);
  assert.equal(sent.length, 1);
  assert.ok(pulledAtFetch <= 2_000_000, `the handler read ${pulledAtFetch} bytes before forwarding`);
  assert.equal(forwarded, size, "every byte went upstream");
  assert.equal(sent[0].headers["content-length"], String(size));
  assert.ok(sent[0].stream instanceof ReadableStream, "passed on as a stream, not a buffer");
});

test("a download streams back: the page gets the answer before the upstream has sent all of it", async () => {
  let release;
  const held = new Promise((resolve) => (release = resolve));
  answer = () =>
    new Response(
      new ReadableStream({
        async start(controller) {
          controller.enqueue(new Uint8Array(1_000_000));
          await held; // the rest only once the page has its answer
          controller.enqueue(new Uint8Array(7_388_608));
          controller.close();
        },
      }),
      { status: 200, headers: { "Content-Type": "application/octet-stream" } },
    );
  const response = await handler.fetch(new Request(`${SELF}/api/files?url=${encodeURIComponent("https://replicate.delivery/x/embedding.bin")}`), env());
  assert.equal(response.status, 200);
  release();
  assert.equal((await response.arrayBuffer()).byteLength, 8_388_608);
});

test("an answer over 64 MiB: refused when it says so, cut off when it does not", async () => {
  answer = () => new Response("x", { status: 200, headers: { "Content-Length": String(64 * 1024 * 1024 + 1) } });
  let result = await call(`/api/files?url=${encodeURIComponent("https://replicate.delivery/x")}`);
  assert.equal(result.status, 502);
  assert.equal(JSON.parse(result.text).source, "proxy");
  answer = () => new Response(zeros(64 * 1024 * 1024 + 1_000_000).stream, { status: 200 });
  const response = await handler.fetch(new Request(`${SELF}/api/files?url=${encodeURIComponent("https://replicate.delivery/x")}`), env());
  assert.equal(response.status, 200);
  await assert.rejects(response.arrayBuffer(), "the stream errors past the cap");
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

test("the Vercel example: every /api path is rewritten to one function that runs the handler", async () => {
  const example = new URL("sam2enc/web/edge/examples/vercel/", root);
  const { rewrites } = JSON.parse(readFileSync(new URL("vercel.json", example), "utf8"));
  assert.deepEqual(rewrites, [{ source: "/api/:path*", destination: "/api/proxy" }]);
  const { default: vercel } = await import(new URL("api/proxy.js", example).href);
  const saved = { ...process.env };
  Object.assign(process.env, env());
  try {
    answer = () => new Response("{}", { status: 200, headers: { "Content-Type": "application/json" } });
    // As Vercel hands it over after the rewrite: the browser's URL, with the unused :path appended.
    sent.length = 0;
    const init = { method: "POST", headers: { Authorization: `Bearer ${TOKEN}`, "Content-Length": "0" } };
    let response = await vercel.fetch(new Request(`${SELF}/api/predictions/abc/cancel?path=predictions%2Fabc%2Fcancel`, init));
    assert.equal(response.status, 200);
    assert.deepEqual(sent.map((r) => [r.method, r.url]), [["POST", `${policy.api_base}/predictions/abc/cancel`]]);
    sent.length = 0;
    answer = () => new Response("bytes", { status: 200 });
    const file = encodeURIComponent("https://replicate.delivery/x/embedding.bin");
    response = await vercel.fetch(new Request(`${SELF}/api/files?url=${file}&path=files`));
    assert.deepEqual([response.status, await response.text()], [200, "bytes"]);
    assert.deepEqual(sent.map((r) => r.url), ["https://replicate.delivery/x/embedding.bin"]);
  } finally {
    for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
    Object.assign(process.env, saved);
  }
});
