// The page's side of the worker protocol (sam2enc/web/static/app/decoder-client.js), DOM-free: which
// callback each message reaches, what a stale answer does, the export promises (a changed photo rejects
// them), the union of several objects' masks. Run by tests/test_page_decoder_client.py.
import assert from "node:assert/strict";
import test from "node:test";
import { createDecodeQueue } from "../../sam2enc/web/static/app/decode-queue.js";
import { createDecoderClient, PHOTO_CHANGED, union } from "../../sam2enc/web/static/app/decoder-client.js";
import { addObject } from "../../sam2enc/web/static/app/objects.js";
import { click } from "../../sam2enc/web/static/app/prompts.js";
import { becameReady, createState, loading, retire } from "../../sam2enc/web/static/app/state.js";

function page() {
  const S = createState();
  const gen = retire(S);
  loading(S, gen);
  becameReady(S, gen, "Ready");
  Object.assign(S, { width: 4, height: 2, display: { cssW: 4, cssH: 2, w: 4, h: 2, dpr: 1 } });
  const posted = [];
  const heard = [];
  let frames = [];
  const queue = createDecodeQueue(S, { post: (m) => posted.push(m), nextFrame: (fn) => frames.push(fn), now: () => 0 });
  const on = {
    failed: (message) => heard.push(["failed", message]), ready: (data) => heard.push(["ready", data.gen]),
    mask: (object, data, sent) => heard.push(["mask", object.id, sent?.id]), error: (text) => heard.push(["error", text]),
  };
  const client = createDecoderClient(S, { post: (m) => posted.push(m), queue, toPng: async (mask) => `png of ${mask.join("")}`, on });
  const frame = () => { const run = frames; frames = []; for (const fn of run) fn(); };
  return { S, queue, client, posted, heard, frame, framesWaiting: () => frames.length };
}

test("ready and failed reach their callbacks; a mask for the live prompts is shown, a late one dropped", () => {
  const { S, queue, client, posted, heard, frame } = page();
  client.receive({ type: "failed", message: "no WASM" });
  client.receive({ type: "ready", gen: S.gen });
  click(S.object.prompts, [1, 1], [1, 1], 1, 1);
  queue.schedule("prompt");
  frame();
  const request = posted[0];
  const mask = { type: "mask", id: request.id, gen: S.gen, promptGen: request.promptGen, objectId: request.objectId, kind: "prompt",
    width: 4, height: 2 };
  client.receive(mask);
  assert.equal(S.inflight, null);
  client.receive({ ...mask, id: 12345 }); // not the request in flight, but for the live prompts: shown
  click(S.object.prompts, [3, 1], [300, 100], 1, 1);
  client.receive(mask); // the prompts moved on
  assert.deepEqual(heard, [["failed", "no WASM"], ["ready", S.gen], ["mask", 1, request.id], ["mask", 1, undefined]]);
  assert.equal(S.dropped, 1);
});

test("an answer sends the next waiting request at the next frame; stale answers are counted", () => {
  const { S, queue, client, posted, frame, framesWaiting } = page();
  click(S.object.prompts, [1, 1], [1, 1], 1, 1);
  queue.schedule("prompt");
  frame();
  click(S.object.prompts, [2, 1], [200, 100], 1, 1);
  queue.schedule("prompt");
  frame();
  assert.equal(posted.length, 1);
  client.receive({ type: "stale", id: posted[0].id, gen: S.gen - 1 });
  assert.equal(S.dropped, 1);
  assert.equal(framesWaiting(), 1);
  frame();
  assert.equal(posted.length, 2);
  assert.deepEqual(posted[1].points, [[1, 1, 1], [2, 1, 1]]);
});

test("an error names itself only for the live bundle; a broken decoder's reason wins", () => {
  const { S, client, heard } = page();
  S.loading = S.gen;
  client.receive({ type: "error", gen: S.gen - 1, message: "Decoder: old" });
  assert.deepEqual(heard, []);
  assert.equal(S.loading, S.gen);
  client.receive({ type: "error", gen: S.gen, message: "Decoder: out of memory" });
  assert.equal(S.loading, null);
  S.decoderError = "The decoder could not be loaded: x.";
  client.receive({ type: "error", message: "Decoder: again" });
  assert.deepEqual(heard, [["error", "Decoder: out of memory"], ["error", "The decoder could not be loaded: x."]]);
});

test("an export resolves with its answer; an error rejects it; an export for a photo that changed rejects", async () => {
  const { S, client, posted } = page();
  click(S.object.prompts, [1, 1], [1, 1], 1, 1);
  S.object.prompts.box = [0, 0, 2, 2];
  const done = client.exportObject(S.object, true);
  const sent = posted.at(-1);
  assert.deepEqual([sent.type, sent.png, sent.points, sent.box, sent.gen], ["export", true, [[1, 1, 1]], [0, 0, 2, 2], S.gen]);
  client.receive({ type: "export", id: sent.id, mask: Uint8Array.of(1, 0, 0, 0, 0, 0, 0, 1), width: 4, height: 2 });
  assert.equal((await done).width, 4);
  const failing = client.exportObject(S.object);
  client.receive({ type: "error", id: posted.at(-1).id, gen: S.gen, message: "Decoder: boom" });
  await assert.rejects(failing, { message: "Decoder: boom" });
  const changed = client.exportObject(S.object);
  retire(S);
  client.receive({ type: "stale", id: posted.at(-1).id, gen: S.gen - 1 });
  await assert.rejects(changed, { message: PHOTO_CHANGED });
  assert.equal(PHOTO_CHANGED, "The photo changed before the export finished.");
  assert.equal(S.exports.size, 0);
});

test("Download mask with every object in scope is the union of their masks; with none it says what to do", async () => {
  const { S, client, posted } = page();
  await assert.rejects(client.exportMask(true), { message: "Place a prompt first." });
  click(S.object.prompts, [1, 1], [1, 1], 1, 1);
  const second = addObject(S.objects);
  click(second.prompts, [3, 1], [3, 1], 1, 1);
  S.scope = "all";
  const result = client.exportMask(true);
  await Promise.resolve();
  const [a, b] = posted.slice(-2);
  assert.deepEqual([a.png, b.png, a.objectId, b.objectId], [false, false, 1, 2]); // the PNG is of the union
  client.receive({ type: "export", id: b.id, mask: Uint8Array.of(0, 0, 0, 1, 0, 0, 1, 0), width: 4, height: 2 });
  client.receive({ type: "export", id: a.id, mask: Uint8Array.of(1, 0, 0, 0, 0, 0, 1, 0), width: 4, height: 2 });
  const { width, height, mask, png } = await result;
  assert.deepEqual([width, height, [...mask], png], [4, 2, [1, 0, 0, 1, 0, 0, 1, 0], "png of 10010010"]);
  assert.deepEqual([...union([{ width: 2, height: 1, mask: [0, 1] }, { width: 2, height: 1, mask: [0, 0] }]).mask], [0, 1]);
});
