// The decode queue: which prompt goes to the decoder worker next, and which answers are too late to show.
// DOM-free (tested with `node --test tests/js/page_decode_queue.test.mjs`): the page hands it the state
// object (app/state.js) and two functions, `post` (to the worker) and `nextFrame` (an animation frame),
// so that the decisions can be checked without a browser.
//
// Why a queue at all: a decode takes longer than a pointer move, so sending every prompt would pile up
// work the user has already moved past. Instead one request is in flight (`S.inflight`); each object keeps
// only its newest waiting request (`S.pending`, by object id: a newer prompt replaces an older one); the
// selected object's goes first; a send waits for an animation frame. An answer is shown only when it is
// still for the live bundle (`gen`), its object's current prompts (`promptGen`) and the display size;
// anything else is dropped and counted (`S.dropped`, read by the tests through window.sam2enc).
import { currentObject } from "./state.js";

export function createDecodeQueue(S, { post, nextFrame, now = () => performance.now() }) {
  /** Queue a decode of `object`'s prompts (the selected object's drawn box and hover point included). */
  function schedule(kind, object = S.object) {
    if (!S.ready) return;
    const mine = object === S.object; // a drawn box and the hover point belong to the selected object
    const hover = mine && kind === "hover" && S.hover;
    const box = (mine && S.drag?.box) || object.prompts.box;
    const points = object.prompts.points.map((p) => [...p]);
    if (hover) points.push([...S.hover]);
    if (!points.length && !box) return;
    S.pending.set(object.id, { kind, points, box: box && [...box], gen: S.gen, objectId: object.id,
      promptGen: object.prompts.promptGen, created: now() });
    nextFrame(flush);
  }

  /** Send the next request unless one is in flight: the selected object's, else the oldest waiting. */
  function flush() {
    if (S.inflight || !S.pending.size) return;
    const objectId = S.pending.has(S.objects.selectedId) ? S.objects.selectedId : S.pending.keys().next().value;
    const request = { ...S.pending.get(objectId), id: S.nextId++, type: "decode", display: [S.display.w, S.display.h] };
    S.pending.delete(objectId);
    S.inflight = request;
    post(request);
  }

  /** A worker answer arrived: the request it answers when that is the one in flight (no longer in flight). */
  function settle(data) {
    const sent = data.id && S.inflight?.id === data.id ? S.inflight : null;
    if (sent) S.inflight = null;
    return sent;
  }

  /** The object a mask answer is to be shown on, or null (counted as dropped) when it was computed for a
   * bundle, object, prompt list, hover point or display size that has moved on. */
  function accept(data) {
    const object = currentObject(S, data);
    const hoverDone = data.kind === "hover" && (!S.hover || object !== S.object);
    if (!object || hoverDone || data.width !== S.display.w || data.height !== S.display.h) {
      S.dropped += 1;
      return null;
    }
    return object;
  }

  /** The worker said a request was for a retired bundle. */
  function drop() {
    S.dropped += 1;
  }

  /** After an answer: the next waiting request goes at the next frame. */
  function resume() {
    if (S.pending.size) nextFrame(flush);
  }

  /** What waits for this object is void (its hover point left, or the object was deleted). */
  function forget(objectId) {
    S.pending.delete(objectId);
  }

  const idle = () => !S.inflight && !S.pending.size;

  return { schedule, flush, settle, accept, drop, resume, forget, idle };
}
