// The objects on one photo: each has its own prompts (with their own undo/redo), colour and label; one is
// selected and takes the clicks. DOM-free (tested with `node --test`): the page draws and decodes, this
// module decides what "New object", selecting, cycling, renaming and deleting do.
//
// There is always at least one object, so that a click always has an object to go to. Each object also
// holds what the page shows for it (`shown`: its last display mask and what it was decoded for).
import { emptyPrompts, hasPrompts } from "./prompts.js";

/** An object's colour in the overlay, [r, g, b], by its number: distinct for the first ten. */
export const COLORS = [
  [30, 144, 255], [255, 127, 14], [148, 103, 189], [44, 160, 44], [227, 119, 194],
  [23, 190, 207], [188, 189, 34], [214, 39, 40], [140, 86, 75], [127, 127, 127],
];
/** The label an object starts with (its COCO category until renamed). */
export const DEFAULT_LABEL = "object";

/** The objects of a new photo: one empty object, selected. */
export function createObjects() {
  // deleted: what "Undo delete" puts back, newest last: { object, at, placeholderId }
  const objects = { list: [], selectedId: 0, nextNumber: 1, deleted: [] };
  addObject(objects);
  return objects;
}

/** "New object": a fresh object after the others, selected; returns it. */
export function addObject(objects, label = DEFAULT_LABEL) {
  const number = objects.nextNumber++;
  const object = {
    id: number, number, label, color: COLORS[(number - 1) % COLORS.length],
    prompts: emptyPrompts(), shown: null,
  };
  objects.list.push(object);
  objects.selectedId = object.id;
  return object;
}

/** The object that takes the clicks. */
export function selected(objects) {
  return objects.list.find((o) => o.id === objects.selectedId);
}

/** The object with this id, or undefined (deleted, or from another photo). */
export function byId(objects, id) {
  return objects.list.find((o) => o.id === id);
}

/** Select the object with this id; false when there is none. */
export function select(objects, id) {
  if (!byId(objects, id)) return false;
  objects.selectedId = id;
  return true;
}

/** Select the next object (`step` 1) or the previous one (-1), wrapping around; returns it. */
export function cycle(objects, step = 1) {
  const n = objects.list.length;
  const at = objects.list.findIndex((o) => o.id === objects.selectedId);
  const next = objects.list[(((at + step) % n) + n) % n];
  objects.selectedId = next.id;
  return next;
}

/** Rename an object; a blank label is refused (false) and the old one kept. */
export function rename(objects, id, label) {
  const object = byId(objects, id);
  const text = String(label ?? "").trim();
  if (!object || !text) return false;
  object.label = text;
  return true;
}

/**
 * Delete an object: the one after it is selected (else the one before); deleting the last one leaves a
 * fresh empty object. The object is kept, prompts and history included, for `restore`: a delete costs
 * the user nothing. Returns the object now selected.
 */
export function remove(objects, id) {
  const at = objects.list.findIndex((o) => o.id === id);
  if (at < 0) return selected(objects);
  const [object] = objects.list.splice(at, 1);
  const record = { object, at, placeholderId: null };
  objects.deleted.push(record);
  if (!objects.list.length) {
    record.placeholderId = addObject(objects).id;
    return selected(objects);
  }
  if (objects.selectedId === id) objects.selectedId = objects.list[Math.min(at, objects.list.length - 1)].id;
  return selected(objects);
}

/** The object "Undo delete" would put back, or undefined. */
export function lastDeleted(objects) {
  return objects.deleted.at(-1)?.object;
}

/**
 * "Undo delete": put the last deleted object back where it was, selected, with its prompts and their
 * history; the empty object that deleting the last one made goes again if it is still empty. Its mask
 * is decoded again (`shown` cleared: the view may have changed size since). Returns it, or null.
 */
export function restore(objects) {
  const record = objects.deleted.pop();
  if (!record) return null;
  const placeholder = byId(objects, record.placeholderId);
  if (placeholder && !hasPrompts(placeholder.prompts) && !placeholder.prompts.history.length) {
    objects.list.splice(objects.list.indexOf(placeholder), 1);
    if (placeholder.number === objects.nextNumber - 1) objects.nextNumber -= 1; // its number is free again
  }
  objects.list.splice(Math.min(record.at, objects.list.length), 0, record.object);
  record.object.shown = null;
  objects.selectedId = record.object.id;
  return record.object;
}

/** The objects that have prompts, in order: what "Download COCO" exports. */
export function annotated(objects) {
  return objects.list.filter((o) => hasPrompts(o.prompts));
}

/** The objects whose masks Cutout/Erase and the downloads use: the selected one, or all annotated. */
export function inScope(objects, scope) {
  if (scope === "all") return annotated(objects);
  const current = selected(objects);
  return hasPrompts(current.prompts) ? [current] : [];
}

// --- saved work: what the page keeps in IndexedDB for a photo (app/store.js) ----------------------------
const copy = (value) => JSON.parse(JSON.stringify(value));

/** A photo's objects as plain data: labels, colours, prompts and their undo/redo history. */
export function toRecord(objects) {
  return {
    version: 1, selectedId: objects.selectedId, nextNumber: objects.nextNumber,
    list: objects.list.map(({ id, number, label, color, prompts }) => ({ id, number, label, color: [...color],
      prompts: copy({ points: prompts.points, box: prompts.box, history: prompts.history, future: prompts.future }) })),
  };
}

/**
 * The objects a record describes, ready to decode (nothing shown yet), or null for a record this page
 * cannot read (another version, or damaged): the photo then starts empty and the record is left alone.
 */
export function fromRecord(record) {
  const points = (list) => Array.isArray(list) && list.every((p) => Array.isArray(p) && p.length === 3 && p.every(Number.isFinite));
  const box = (b) => b === null || (Array.isArray(b) && b.length === 4 && b.every(Number.isFinite));
  const state = (s) => s && points(s.points) && box(s.box);
  const valid = record?.version === 1 && Array.isArray(record.list) && record.list.length > 0
    && record.list.every((o) => Number.isInteger(o.id) && typeof o.label === "string" && o.label.trim()
      && state(o.prompts) && [o.prompts.history, o.prompts.future].every((s) => Array.isArray(s) && s.every(state)));
  if (!valid) return null;
  const list = record.list.map((o) => ({ id: o.id, number: o.number, label: o.label,
    color: o.color ?? COLORS[(o.number - 1) % COLORS.length], prompts: { ...copy(o.prompts), promptGen: 0 }, shown: null }));
  const selectedId = list.some((o) => o.id === record.selectedId) ? record.selectedId : list[0].id;
  const nextNumber = Math.max(record.nextNumber ?? 0, ...list.map((o) => o.number + 1));
  return { list, selectedId, nextNumber, deleted: [] };
}

/** Whether there is anything worth keeping: a prompt, an undo step, a renamed or added object. */
export function worthSaving(objects) {
  return objects.list.length > 1 || objects.list.some((o) => hasPrompts(o.prompts) || o.prompts.history.length
    || o.label !== DEFAULT_LABEL);
}
