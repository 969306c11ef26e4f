// The page's side of the decoder worker's protocol (worker.js): what each message means to the page, and
// the full-resolution exports as promises. DOM-free (tested with `node --test
// tests/js/page_decoder_client.test.mjs`): the page passes `post` (to the worker), the decode queue
// (app/decode-queue.js), `toPng` (lib's maskToPng) and callbacks that draw and set the status line.
//
// Messages from the worker: "failed" (the decoder cannot load: said once, for good), "ready" (a bundle is
// warm), "mask" (a display-size decode), "stale" (a request for a retired bundle), "error" (a decode or
// export threw), "export" (a full-resolution mask). Decode answers go through the queue, which decides
// whether they are still worth showing; export answers settle the promise waiting under their id in
// `S.exports`. An export that the worker calls stale rejects: the photo changed before it finished.
import { inScope } from "./objects.js";

export const PHOTO_CHANGED = "The photo changed before the export finished.";

/** Several objects' full-resolution masks as one: a pixel is in when it is in any of them. */
export function union(results) {
  const { width, height } = results[0];
  const mask = new Uint8Array(width * height);
  for (const r of results) for (let i = 0; i < mask.length; i++) mask[i] |= r.mask[i];
  return { width, height, mask };
}

/**
 * `on`: failed(message), ready(data), mask(object, data, sent) for a mask still worth showing (`sent`: the
 * request it answers), error(text) with the line the status should read.
 */
export function createDecoderClient(S, { post, queue, toPng, on }) {
  /** Take one message from the worker. */
  function receive(data) {
    if (data.type === "failed") return on.failed(data.message);
    if (data.type === "ready") return on.ready(data);
    if (data.type === "prefetched") return on.prefetched?.(data);
    if (data.type === "export") {
      const done = S.exports.get(data.id);
      S.exports.delete(data.id);
      done?.(data);
      return;
    }
    const sent = queue.settle(data);
    if (data.type === "error") {
      const waiting = S.exports.get(data.id);
      if (waiting) { S.exports.delete(data.id); waiting(data); }
      if (S.decoderError) on.error(S.decoderError); // not "Decoder: …" again for each message
      else if (data.gen === S.gen || data.gen === undefined) { S.loading = null; on.error(data.message); }
    } else if (data.type === "mask") {
      const object = queue.accept(data);
      if (object) on.mask(object, data, sent);
    } else if (data.type === "stale") {
      queue.drop();
      const waiting = S.exports.get(data.id);
      if (waiting) { S.exports.delete(data.id); waiting({ type: "error", message: PHOTO_CHANGED }); }
    }
    queue.resume();
  }

  /** Send an export request; its answer (a full-resolution mask) resolves, an error rejects. */
  function request(message) {
    return new Promise((resolve, reject) => {
      const id = S.nextId++;
      S.exports.set(id, (data) => (data.type === "error" ? reject(new Error(data.message)) : resolve(data)));
      post({ ...message, type: "export", id });
    });
  }

  /** One object's mask at the photo's size, with the prompts it was decoded for (and its PNG when `png`). */
  function exportObject(object, png = false) {
    return request({ gen: S.gen, promptGen: object.prompts.promptGen, objectId: object.id, png,
      points: object.prompts.points.map((p) => [...p]), box: object.prompts.box && [...object.prompts.box] });
  }

  /** The mask of the objects in scope (the selected one, or the union of all) at the photo's size. */
  async function exportMask(png) {
    const chosen = S.ready ? inScope(S.objects, S.scope) : [];
    if (!chosen.length) throw new Error("Place a prompt first.");
    if (chosen.length === 1) return exportObject(chosen[0], png);
    const { width, height, mask } = union(await Promise.all(chosen.map((o) => exportObject(o))));
    return { width, height, mask, png: png ? await toPng(mask, width, height) : null };
  }

  return { receive, request, exportObject, exportMask };
}
