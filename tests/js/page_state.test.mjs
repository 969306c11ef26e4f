// The page's prompt list (sam2enc/web/static/app/prompts.js), DOM-free: which marker a click deletes,
// what undo and clear give back, and that every edit voids older decodes. Run by tests/test_page_state.py.
import assert from "node:assert/strict";
import test from "node:test";
import { boxFrom, clampToPhoto, clear, click, emptyPrompts, markerAt, setBox, undo } from "../../sam2enc/web/static/app/prompts.js";

test("a click on a marker deletes that marker, the nearest, never another", () => {
  const p = emptyPrompts();
  click(p, [100, 100], [100, 100], 1, 1);
  click(p, [160, 100], [160, 100], 1, 0);
  click(p, [106, 100], [106, 100], 1, 1); // 6 CSS px from the first: deletes it, adds nothing
  assert.deepEqual(p.points, [[160, 100, 0]]);
  click(p, [300, 300], [300, 300], 1, 1);
  click(p, [305, 300], [305, 300], 1, 1); // 5 px away: deletes [300, 300]
  assert.deepEqual(p.points, [[160, 100, 0]]);
});

test("between two close markers the nearer one is deleted", () => {
  const p = { ...emptyPrompts(), points: [[100, 100, 1], [112, 100, 0], [300, 40, 1]] };
  assert.equal(markerAt(p.points, [110, 100], 1), 1);
  assert.equal(markerAt(p.points, [103, 100], 1), 0);
  assert.deepEqual(click(p, [110, 100], [110, 100], 1, 1), { deleted: 1 });
  assert.deepEqual(p.points, [[100, 100, 1], [300, 40, 1]]);
  assert.deepEqual(click(p, [300, 41], [300, 41], 1, 1), { deleted: 1 });
  assert.deepEqual(p.points, [[100, 100, 1]]);
});

test("hit-testing is in CSS px of the shown photo (scale), not photo pixels", () => {
  const points = [[1000, 500, 1], [1030, 500, 1]]; // 3 CSS px apart at scale 0.1
  assert.equal(markerAt(points, [103, 50], 0.1), 1);
  assert.equal(markerAt(points, [100, 50], 0.1), 0);
  assert.equal(markerAt(points, [100, 61], 0.1), -1); // 11 CSS px away: a new point
  assert.equal(markerAt([[1000, 500, 1]], [105, 50], 0.1), 0); // 5 CSS px (50 photo px) away: a hit
  assert.equal(markerAt([[100, 100, 1]], [212, 200], 2), -1); // 12 CSS px (6 photo px) away: a miss
  const p = { ...emptyPrompts(), points: [[1000, 500, 1]] };
  assert.deepEqual(click(p, [1000, 610], [100, 61], 0.1, 0), { added: [1000, 610, 0] });
});

test("every edit bumps promptGen; undo and clear give back what was there", () => {
  const p = emptyPrompts();
  click(p, [10, 10], [10, 10], 1, 1);
  assert.equal(p.promptGen, 1);
  assert.equal(setBox(p, boxFrom([50, 60], [20, 10])), true);
  assert.deepEqual(p.box, [20, 10, 50, 60]);
  assert.equal(setBox(p, [5, 5, 5.5, 30]), false); // under a pixel wide: no box, no edit
  assert.equal(clear(p), true);
  assert.deepEqual([p.points, p.box, p.promptGen], [[], null, 3]);
  assert.equal(clear(p), false);
  assert.equal(undo(p), true);
  assert.deepEqual([p.points, p.box], [[[10, 10, 1]], [20, 10, 50, 60]]);
  undo(p);
  undo(p);
  assert.deepEqual([p.points, p.box, p.promptGen], [[], null, 6]);
  assert.equal(undo(p), false);
  assert.deepEqual(clampToPhoto([-3, 900], 600, 400), [0, 400]);
});
