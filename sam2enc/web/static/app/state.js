// The page's state in one object, and the transitions that keep it consistent. DOM-free.
//
// Every bundle has a generation (`gen`), every edit of an object's prompts a generation (its
// `prompts.promptGen`); each decode result carries both and the object's id, and is dropped when the
// bundle, the object or its prompts have moved on. A new photo or bundle retires the old one at once,
// but only once it has been checked: a bad pick changes nothing here. `S.prompts` is the selected
// object's prompt list; `S.pending` holds the newest request waiting for each object (app/decode-queue.js).
// `S.timings` keeps the last TIMINGS_KEPT masks' times only: a long session does not grow it without bound.
import { byId, createObjects, selected } from "./objects.js";

export function createState() {
  return {
    gen: 0, ready: false, loading: null, readyText: "", width: 0, height: 0, photo: null, source: null,
    saved: null, objects: createObjects(), justDeleted: false, drag: null, hover: null, cursor: null,
    inflight: null, pending: new Map(), nextId: 1, exports: new Map(),
    seq: 0, dropped: 0, timings: [], fileName: null,
    backend: null, view: "overlay", scope: "selected", display: { cssW: 0, cssH: 0, w: 0, h: 0, dpr: 1 },
    modelInfo: null, randomModels: false,
    picks: 0, encode: null, encodeFile: null, encodePhoto: null, decoderError: null,
    painted: null, // the photo the canvases show at S.display (layout() paints only what changed)
    dataset: null, // dataset mode: { key } of the live photo (its sha256), whose objects are saved as they change
    /** The selected object's prompt list: where clicks, undo, redo and clear go. */
    get prompts() { return selected(this.objects).prompts; },
    /** The selected object. */
    get object() { return selected(this.objects); },
  };
}

/** How many masks' timings `S.timings` keeps (the newest; window.sam2enc.timings reads them). */
export const TIMINGS_KEPT = 200;

/** One mask reached the screen: its times join `S.timings`, the oldest beyond TIMINGS_KEPT leave. */
export function recordTiming(S, timing) {
  S.timings.push(timing);
  if (S.timings.length > TIMINGS_KEPT) S.timings.splice(0, S.timings.length - TIMINGS_KEPT);
}

/** The decoder cannot work on this page: its reason stays, and nothing waits for a Ready any more. */
export function decoderFailed(S, message) {
  S.decoderError = message;
  S.loading = null;
}

/** A new pick (files, demo, encode) starts; older picks still being checked lose. */
export function newPick(S) {
  return ++S.picks;
}

/** The live bundle, its photo and prompts end; returns the new generation. */
export function retire(S) {
  S.gen += 1;
  Object.assign(S, {
    ready: false, loading: null, photo: null, saved: null, drag: null, hover: null, cursor: null,
    width: 0, height: 0, fileName: null, objects: createObjects(), justDeleted: false, dataset: null,
  });
  S.pending.clear();
  return S.gen;
}

/** The selected object's prompts moved on: what was pending for it is for prompts that no longer exist. */
export function promptsChanged(S) {
  S.pending.delete(S.objects.selectedId);
}

/** A bundle was handed to the decoder: until it says Ready, "wait for Ready" is true. */
export function loading(S, gen) {
  if (gen === S.gen) S.loading = gen;
}

export function becameReady(S, gen, text) {
  if (gen !== S.gen) return false;
  Object.assign(S, { ready: true, loading: null, readyText: text });
  return true;
}

/** The object a worker result is for, when it is for the live bundle and that object's current prompts. */
export function currentObject(S, data) {
  const object = byId(S.objects, data.objectId);
  return data.gen === S.gen && object && data.promptGen === object.prompts.promptGen ? object : null;
}

/** Why a prompt cannot be placed now (the end of a sentence), given what the encode box needs next. */
export function notReadyReason(S, encodeStep) {
  if (S.decoderError) return `${S.decoderError[0].toLowerCase()}${S.decoderError.slice(1).replace(/\.$/, "")}`;
  if (!S.width) return "there is no photo yet";
  if (S.loading === S.gen) return "the decoder is not ready yet: wait for \u201cReady\u201d";
  if (S.encode) return "the photo is still being encoded on Replicate";
  return `this photo has no bundle yet: ${encodeStep}`;
}
