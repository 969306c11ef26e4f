// The page's objects (sam2enc/web/static/app/objects.js) and how decode results find their object
// (app/state.js), DOM-free. Run by tests/test_page_objects.py.
import assert from "node:assert/strict";
import test from "node:test";
import { addObject, annotated, COLORS, createObjects, cycle, inScope, lastDeleted, remove, rename, restore, select, selected } from "../../sam2enc/web/static/app/objects.js";
import { click, clear, redo, undo } from "../../sam2enc/web/static/app/prompts.js";
import { createState, currentObject, retire } from "../../sam2enc/web/static/app/state.js";

test("a new photo has one empty object, selected; New object adds and selects another colour", () => {
  const o = createObjects();
  assert.equal(o.list.length, 1);
  assert.equal(selected(o).label, "object");
  assert.deepEqual(selected(o).color, COLORS[0]);
  const second = addObject(o);
  assert.equal(selected(o), second);
  assert.equal(second.number, 2);
  assert.notDeepEqual(second.color, o.list[0].color);
  assert.deepEqual(annotated(o), []);
});

test("clicks, undo and redo belong to the selected object only", () => {
  const o = createObjects();
  const first = selected(o);
  click(first.prompts, [10, 10], [10, 10], 1, 1);
  const second = addObject(o);
  click(second.prompts, [50, 50], [50, 50], 1, 1);
  click(second.prompts, [90, 20], [90, 20], 1, 0);
  assert.equal(undo(second.prompts), true);
  assert.deepEqual(second.prompts.points, [[50, 50, 1]]);
  assert.deepEqual(first.prompts.points, [[10, 10, 1]]);
  assert.equal(redo(second.prompts), true);
  assert.deepEqual(second.prompts.points, [[50, 50, 1], [90, 20, 0]]);
  assert.equal(redo(second.prompts), false);
  undo(second.prompts);
  click(second.prompts, [70, 70], [70, 70], 1, 1); // a new edit ends the redo history
  assert.equal(redo(second.prompts), false);
  assert.equal(clear(first.prompts), true);
  assert.equal(undo(first.prompts), true);
  assert.deepEqual(first.prompts.points, [[10, 10, 1]]);
  assert.deepEqual(annotated(o).map((x) => x.number), [1, 2]);
  assert.deepEqual(inScope(o, "selected").map((x) => x.number), [2]);
  assert.deepEqual(inScope(o, "all").map((x) => x.number), [1, 2]);
});

test("cycling wraps both ways; select, rename and delete", () => {
  const o = createObjects();
  addObject(o);
  addObject(o);
  assert.equal(cycle(o, 1).number, 1);
  assert.equal(cycle(o, -1).number, 3);
  assert.equal(cycle(o, -1).number, 2);
  assert.equal(select(o, 99), false);
  assert.equal(rename(o, 2, "  cup "), true);
  assert.equal(rename(o, 2, "   "), false);
  assert.equal(selected(o).label, "cup");
  assert.equal(remove(o, 2).number, 3); // the next one
  assert.equal(remove(o, 3).number, 1); // no next: the one before
  assert.equal(remove(o, 1).number, 4); // the last one: a fresh object, numbers never reused
  assert.equal(o.list.length, 1);
  assert.equal(inScope(o, "selected").length, 0);
});

test("a decode result lands on its own object, never on another or a deleted one", () => {
  const S = createState();
  S.gen = 3;
  const first = S.object;
  click(first.prompts, [1, 1], [1, 1], 1, 1);
  const result = { gen: 3, objectId: first.id, promptGen: first.prompts.promptGen };
  const second = addObject(S.objects);
  click(second.prompts, [2, 2], [2, 2], 1, 1);
  assert.equal(S.prompts, second.prompts);
  assert.equal(currentObject(S, result), first); // selected another meanwhile: still first's
  assert.equal(currentObject(S, { ...result, objectId: second.id, promptGen: 0 }), null); // second's old prompts
  assert.equal(currentObject(S, { ...result, gen: 2 }), null);
  click(first.prompts, [5, 5], [5, 5], 1, 1);
  assert.equal(currentObject(S, result), null); // first's prompts moved on
  remove(S.objects, first.id);
  assert.equal(currentObject(S, { ...result, promptGen: first.prompts.promptGen }), null);
  S.pending.set(second.id, {});
  retire(S);
  assert.equal(S.objects.list.length, 1);
  assert.equal(S.pending.size, 0);
  assert.deepEqual(S.prompts.points, []);
});

test("undo delete puts the object back where it was, prompts and history included", () => {
  const o = createObjects();
  click(o.list[0].prompts, [10, 10], [10, 10], 1, 1);
  const second = addObject(o);
  click(second.prompts, [20, 20], [20, 20], 1, 1);
  click(second.prompts, [30, 30], [30, 30], 1, 1);
  addObject(o);
  second.shown = { mask: "old" };
  remove(o, second.id);
  assert.deepEqual(o.list.map((x) => x.number), [1, 3]);
  assert.equal(lastDeleted(o), second);
  assert.equal(restore(o), second);
  assert.deepEqual(o.list.map((x) => x.number), [1, 2, 3]); // where it was
  assert.equal(selected(o), second);
  assert.deepEqual(second.prompts.points.map((p) => p.slice(0, 2)), [[20, 20], [30, 30]]);
  assert.equal(second.prompts.history.length, 2); // its own undo still works
  assert.equal(second.shown, null); // decoded again for the view as it is now
  assert.equal(restore(o), null); // nothing more to put back
});

test("undo delete of the only object drops the empty stand-in, not one the user has used", () => {
  const o = createObjects();
  const only = o.list[0];
  click(only.prompts, [10, 10], [10, 10], 1, 1);
  remove(o, only.id);
  assert.equal(o.list.length, 1);
  restore(o);
  assert.deepEqual(o.list.map((x) => x.number), [1]);
  remove(o, only.id);
  click(selected(o).prompts, [5, 5], [5, 5], 1, 1); // the stand-in got a click: it stays
  restore(o);
  assert.deepEqual(o.list.map((x) => x.number), [1, 2], "the dropped stand-in's number is not skipped");
  assert.equal(selected(o), only);
  assert.equal(addObject(o).number, 3);
  // deleted several times: put back newest first
  remove(o, only.id);
  remove(o, 3);
  assert.equal(restore(o).number, 3);
  assert.equal(restore(o).number, 1);
});

test("undo on the second object edits the second object only, whichever object undo runs on", () => {
  const o = createObjects();
  const first = selected(o);
  click(first.prompts, [10, 10], [10, 10], 1, 1);
  click(first.prompts, [20, 20], [20, 20], 1, 1);
  const second = addObject(o);
  click(second.prompts, [50, 50], [50, 50], 1, 1);
  assert.equal(undo(selected(o).prompts), true); // what the page's Undo and Ctrl+Z run on
  assert.deepEqual(second.prompts.points, []);
  assert.deepEqual(first.prompts.points, [[10, 10, 1], [20, 20, 1]], "the first object is untouched");
  assert.equal(undo(selected(o).prompts), false, "the second object's history is its own");
  assert.deepEqual(first.prompts.points, [[10, 10, 1], [20, 20, 1]]);
});
