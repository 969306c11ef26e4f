// The page's state in one object, and the transitions that keep it consistent. DOM-free.
//
// Every bundle has a generation (`gen`), every edit of the prompts a generation (`prompts.promptGen`);
// each decode result carries both and is dropped when either has moved on. A new photo or bundle
// retires the old one at once, but only once it has been checked: a bad pick changes nothing here.
import { bump, emptyPrompts } from "./prompts.js";

export function createState() {
  return {
    gen: 0, ready: false, loading: null, readyText: "", width: 0, height: 0, photo: null, source: null,
    saved: null, prompts: emptyPrompts(), drag: null, hover: null, cursor: null,
    inflight: null, pending: null, nextId: 1, exports: new Map(),
    seq: 0, dropped: 0, last: null, shown: false, maskImage: null, lastMask: null, timings: [],
    backend: null, view: "overlay", display: { cssW: 0, cssH: 0, w: 0, h: 0, dpr: 1 },
    modelInfo: null, randomModels: false,
    picks: 0, encode: null, encodeFile: null, encodePhoto: null,
  };
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
    maskImage: null, shown: false, lastMask: null, last: null, width: 0, height: 0,
  });
  const promptGen = S.prompts.promptGen;
  S.prompts = emptyPrompts();
  S.prompts.promptGen = promptGen;
  promptsChanged(S);
  return S.gen;
}

/** The prompts moved on: what was pending is for prompts that no longer exist. */
export function promptsChanged(S) {
  bump(S.prompts);
  S.pending = null;
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

/** A worker result is for the live bundle and the current prompts. */
export function isCurrent(S, data) {
  return data.gen === S.gen && data.promptGen === S.prompts.promptGen;
}

/** Why a prompt cannot be placed now (the end of a sentence), given what the encode box needs next. */
export function notReadyReason(S, encodeStep) {
  if (!S.width) return "there is no photo yet";
  if (S.loading === S.gen) return "the decoder is not ready yet: wait for \u201cReady\u201d";
  if (S.encode) return "the photo is still being encoded on Replicate";
  return `this photo has no bundle yet: ${encodeStep}`;
}
