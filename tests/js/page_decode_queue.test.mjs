// The page's decode queue (sam2enc/web/static/app/decode-queue.js), DOM-free: one request in flight, the
// newest waiting per object, the selected object first, sends only at an animation frame, and answers for a
// bundle, object, prompt list or size that moved on dropped and counted. Run by tests/test_page_decode_queue.py.
import assert from "node:assert/strict";
import test from "node:test";
import { createDecodeQueue } from "../../sam2enc/web/static/app/decode-queue.js";
import { addObject, select } from "../../sam2enc/web/static/app/objects.js";
import { click } from "../../sam2enc/web/static/app/prompts.js";
import { becameReady, createState, loading, retire } from "../../sam2enc/web/static/app/state.js";

/** A live page with a 600×400 photo shown at 300×200, a queue whose frames run only when told. */
function page() {
  const S = createState();
  const gen = retire(S);
  loading(S, gen);
  becameReady(S, gen, "Ready");
  Object.assign(S, { width: 600, height: 400, display: { cssW: 300, cssH: 200, w: 300, h: 200, dpr: 1 } });
  const sent = [];
  let frames = [];
  const queue = createDecodeQueue(S, { post: (r) => sent.push(r), nextFrame: (fn) => frames.push(fn), now: () => 0 });
  const frame = () => { const run = frames; frames = []; for (const fn of run) fn(); };
  const answer = (request, extra = {}) => ({ type: "mask", id: request.id, gen: request.gen, promptGen: request.promptGen,
    objectId: request.objectId, kind: request.kind, width: request.display[0], height: request.display[1], ...extra });
  return { S, queue, sent, frame, answer, pendingFrames: () => frames.length };
}

const prompt = (object, x, label = 1) => click(object.prompts, [x, 10], [x, 10], 1, label);

test("nothing is sent before the animation frame, and nothing without prompts or before Ready", () => {
  const { S, queue, sent, frame } = page();
  queue.schedule("prompt");
  assert.equal(S.pending.size, 0); // no prompts: nothing to decode
  prompt(S.object, 100);
  queue.schedule("prompt");
  assert.equal(sent.length, 0);
  frame();
  assert.equal(sent.length, 1);
  assert.deepEqual([sent[0].type, sent[0].points, sent[0].display], ["decode", [[100, 10, 1]], [300, 200]]);
  const notReady = createState();
  prompt(notReady.object, 5);
  createDecodeQueue(notReady, { post: () => assert.fail("sent"), nextFrame: () => assert.fail("frame") }).schedule("prompt");
  assert.equal(notReady.pending.size, 0);
});

test("one request in flight; a newer prompt replaces the older one waiting for the same object", () => {
  const { S, queue, sent, frame, answer } = page();
  prompt(S.object, 100);
  queue.schedule("prompt");
  frame();
  prompt(S.object, 200);
  queue.schedule("prompt");
  prompt(S.object, 300);
  queue.schedule("prompt");
  frame();
  assert.equal(sent.length, 1); // the first is still in flight
  assert.equal(S.pending.size, 1);
  assert.equal(queue.idle(), false);
  assert.equal(queue.settle(answer(sent[0])), sent[0]);
  assert.equal(S.inflight, null);
  queue.resume();
  frame();
  assert.equal(sent.length, 2);
  assert.deepEqual(sent[1].points, [[100, 10, 1], [200, 10, 1], [300, 10, 1]]); // the newest only
  assert.equal(queue.settle(answer(sent[1])), sent[1]);
  queue.resume();
  frame();
  assert.equal(sent.length, 2);
  assert.equal(queue.idle(), true);
});

test("the selected object's request goes before another object's waiting longer", () => {
  const { S, queue, sent, frame, answer } = page();
  const first = S.object;
  prompt(first, 100);
  const second = addObject(S.objects);
  prompt(second, 200);
  const third = addObject(S.objects);
  prompt(third, 300);
  queue.schedule("prompt", third); // in flight
  frame();
  queue.schedule("prompt", first);
  queue.schedule("prompt", second);
  select(S.objects, second.id);
  queue.settle(answer(sent[0]));
  queue.resume();
  frame();
  assert.deepEqual(sent.map((r) => r.objectId), [third.id, second.id]);
  queue.settle(answer(sent[1]));
  queue.resume();
  frame();
  assert.deepEqual(sent.map((r) => r.objectId), [third.id, second.id, first.id]);
});

test("a result for a retired gen, an old promptGen, another size or a finished hover is dropped and counted", () => {
  const { S, queue, sent, frame, answer } = page();
  prompt(S.object, 100);
  queue.schedule("prompt");
  frame();
  const result = answer(sent[0]);
  assert.equal(queue.accept(result), S.object);
  assert.equal(S.dropped, 0);
  assert.equal(queue.accept({ ...result, width: 600 }), null); // decoded for the display before a resize
  assert.equal(queue.accept({ ...result, gen: S.gen - 1 }), null); // a retired bundle
  prompt(S.object, 200);
  assert.equal(queue.accept(result), null); // the object's prompts moved on
  assert.equal(queue.accept({ ...result, objectId: 99 }), null); // a deleted object
  const hover = answer(sent[0], { kind: "hover", promptGen: S.object.prompts.promptGen });
  assert.equal(queue.accept(hover), null); // the pointer has left: no hover preview any more
  S.hover = [5, 5, 1];
  assert.equal(queue.accept(hover), S.object);
  queue.drop(); // the worker's "stale"
  assert.equal(S.dropped, 6);
});

test("an answer that is not the one in flight leaves it in flight; forget voids what waits", () => {
  const { S, queue, sent, frame, answer } = page();
  prompt(S.object, 100);
  queue.schedule("prompt");
  frame();
  assert.equal(queue.settle({ type: "export", id: 999 }), null);
  assert.equal(queue.settle({ type: "error" }), null); // no id
  assert.equal(S.inflight, sent[0]);
  queue.schedule("prompt");
  queue.forget(S.objects.selectedId);
  queue.settle(answer(sent[0]));
  queue.resume();
  frame();
  assert.equal(sent.length, 1);
});

test("a drawn box and the hover point belong to the selected object's request only", () => {
  const { S, queue, sent, frame } = page();
  const first = S.object;
  prompt(first, 100);
  const second = addObject(S.objects);
  prompt(second, 400);
  S.drag = { box: [1, 2, 30, 40] };
  S.hover = [7, 8, 1];
  queue.schedule("hover");
  frame();
  assert.deepEqual([sent[0].points, sent[0].box], [[[400, 10, 1], [7, 8, 1]], [1, 2, 30, 40]]);
  S.inflight = null;
  queue.schedule("hover", first);
  frame();
  assert.deepEqual([sent[1].points, sent[1].box], [[[100, 10, 1]], null]);
});

test("S.timings keeps only the newest TIMINGS_KEPT masks' times", async () => {
  const { recordTiming, TIMINGS_KEPT } = await import("../../sam2enc/web/static/app/state.js");
  const S = createState();
  for (let i = 0; i < TIMINGS_KEPT * 3 + 7; i++) recordTiming(S, { decoderMs: i, onScreenMs: i });
  assert.equal(S.timings.length, TIMINGS_KEPT);
  assert.equal(S.timings.at(-1).decoderMs, TIMINGS_KEPT * 3 + 6);
  assert.equal(S.timings[0].decoderMs, TIMINGS_KEPT * 2 + 7);
});
