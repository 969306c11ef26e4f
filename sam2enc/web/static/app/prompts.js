// The prompt list of one object: clicks, one box and their undo/redo history. DOM-free (tested with `node --test`): the page
// turns pointer events into photo pixels and CSS pixels, and this module decides what a click does.
//
// Every edit bumps `promptGen`, so that a decode computed for the prompts before the edit is dropped.

/** CSS px radius of a prompt marker as drawn. */
export const MARKER = 7;
/** CSS px: a click this close to a marker's centre deletes that marker instead of adding one. */
export const HIT = 10;

/** A fresh prompt list. */
export function emptyPrompts() {
  return { points: [], box: null, history: [], future: [], promptGen: 0 };
}

/**
 * Index of the marker a click at `at` (CSS px, relative to the photo's top-left corner) lands on — the
 * nearest one within `hit` CSS px — or -1. `scale`: CSS px per photo pixel.
 */
export function markerAt(points, [px, py], scale, hit = HIT) {
  let found = -1, bestD = hit;
  points.forEach(([x, y], i) => {
    const d = Math.hypot(x * scale - px, y * scale - py);
    if (d <= bestD) { bestD = d; found = i; }
  });
  return found;
}

/** A box [x0, y0, x1, y1] from two corners in any order. */
export function boxFrom([x0, y0], [x1, y1]) {
  return [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)];
}

/** A point clamped into the photo [0, width] × [0, height]. */
export function clampToPhoto([x, y], width, height) {
  return [Math.min(Math.max(x, 0), width), Math.min(Math.max(y, 0), height)];
}

/** Prompts changed (or were retired): whatever was computed or pending for the old ones is void. */
export function bump(prompts) {
  prompts.promptGen += 1;
}

const snapshot = (prompts) => ({ points: prompts.points.map((p) => [...p]), box: prompts.box && [...prompts.box] });

function edit(prompts, change) {
  prompts.history.push(snapshot(prompts));
  prompts.future = []; // a new edit ends what could be redone
  change();
  bump(prompts);
}

/**
 * A click (not a drag) at photo pixel `photo` and CSS px `css`: deletes the marker under it, else adds
 * a point with `label`. Returns what it did.
 */
export function click(prompts, photo, css, scale, label) {
  const hit = markerAt(prompts.points, css, scale);
  if (hit >= 0) {
    edit(prompts, () => prompts.points.splice(hit, 1));
    return { deleted: hit };
  }
  const point = [photo[0], photo[1], label];
  edit(prompts, () => prompts.points.push(point));
  return { added: point };
}

/** Add a point [x, y, label] (keyboard Enter). */
export function addPoint(prompts, point) {
  edit(prompts, () => prompts.points.push([...point]));
}

/** Set the box; one under a photo pixel wide or high is no box and changes nothing. */
export function setBox(prompts, box) {
  if (!(box[2] - box[0] >= 1 && box[3] - box[1] >= 1)) return false;
  edit(prompts, () => { prompts.box = [...box]; });
  return true;
}

// Undo and redo are one move in opposite directions: the state on top of one stack replaces the
// current one, which goes onto the other stack.
function step(prompts, from, to) {
  const state = prompts[from].pop();
  if (!state) return false;
  prompts[to].push(snapshot(prompts));
  prompts.points = state.points;
  prompts.box = state.box;
  bump(prompts);
  return true;
}

/** Take the last edit back; false when there is nothing to undo. */
export function undo(prompts) {
  return step(prompts, "history", "future");
}

/** Put back the last edit taken back; false when there is nothing to redo. */
export function redo(prompts) {
  return step(prompts, "future", "history");
}

/** Remove every prompt (itself undoable); false when there was nothing to clear. */
export function clear(prompts) {
  if (!prompts.points.length && !prompts.box) return false;
  edit(prompts, () => { prompts.points = []; prompts.box = null; });
  return true;
}

/** Whether there is anything to decode. */
export function hasPrompts(prompts) {
  return prompts.points.length > 0 || Boolean(prompts.box);
}
