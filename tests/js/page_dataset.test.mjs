// The page's dataset mode, DOM-free (sam2enc/web/static/app/dataset.js, objects.js's records): which
// bundle pairs with which photo in a folder, why a photo has none, what Next reads ahead, and that a
// photo's saved work comes back as it was. Run by tests/test_page_dataset.py.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import test from "node:test";
import { ahead, indexFolder, refuse, relativePath, step, summary } from "../../sam2enc/web/static/app/dataset.js";
import { addObject, createObjects, fromRecord, rename, toRecord, worthSaving } from "../../sam2enc/web/static/app/objects.js";
import { click, undo } from "../../sam2enc/web/static/app/prompts.js";

/** A file as <input webkitdirectory> lists it: "album/sub/a.jpg" for the folder "album". */
function file(path, content) {
  const bytes = Buffer.from(typeof content === "string" ? content : JSON.stringify(content));
  return { name: path.split("/").pop(), webkitRelativePath: `album/${path}`, size: bytes.length,
    bytes, text: async () => bytes.toString("utf8") };
}
const hash = async (f) => createHash("sha256").update(f.bytes).digest("hex");
const sha = (text) => createHash("sha256").update(text).digest("hex");
const manifest = (source, extra = {}) => ({ format: "sam2enc-bundle", version: 1, ...(source ? { source: { sha256: sha(source) } } : {}), ...extra });

test("bundles pair with their photo by the sha256 they record, wherever they are in the folder", async () => {
  const files = [
    file("b.jpg", "photo b"), file("sub/a.jpg", "photo a"), file("c.png", "photo c"),
    file("bundles/whatever/manifest.json", manifest("photo a")), file("bundles/whatever/embedding.bin", "x"),
    file("b/manifest.json", manifest("photo b")), file("b/embedding.bin", "y"),
    file("notes.txt", "not a photo"), file(".thumbs/b.jpg", "hidden"),
  ];
  const seen = [];
  const dataset = await indexFolder(files, { hash, progress: (done, total) => seen.push([done, total]) });
  assert.deepEqual(seen, [[1, 3], [2, 3], [3, 3]]); // one step per photo read, never for other files
  assert.equal(dataset.root, "album");
  assert.deepEqual(dataset.photos.map((p) => [p.path, p.state, p.bundle?.dir ?? null]),
    [["b.jpg", "ready", "b"], ["c.png", "missing", null], ["sub/a.jpg", "ready", "bundles/whatever"]]);
  assert.equal(dataset.photos[0].sha256, sha("photo b"));
  assert.equal(dataset.photos[1].why, "no bundle in the folder");
  assert.deepEqual(dataset.strays, []);
  assert.equal(summary(dataset), "3 photos: 2 with a bundle, 1 without");
});

test("a bundle that records another photo pairs with none, even under the photo's name", async () => {
  const files = [file("a.jpg", "photo a, re-saved"), file("a/manifest.json", manifest("photo a")), file("a/embedding.bin", "x")];
  const dataset = await indexFolder(files, { hash });
  assert.equal(dataset.photos[0].state, "missing");
  assert.match(dataset.strays[0].why, /^a: its photo \(sha256 [0-9a-f]{12}…\) is not in this folder$/);
});

test("an older bundle (no source) pairs by its folder's name, the photo beside it first", async () => {
  const files = [
    file("x/cat.jpg", "cat 1"), file("y/cat.jpg", "cat 2"),
    file("y/cat/manifest.json", manifest(null)), file("y/cat/embedding.bin", "x"),
    file("dog.jpg", "dog"), file("out/dog/manifest.json", manifest(null)), file("out/dog/embedding.bin", "x"),
    file("z/bird/manifest.json", manifest(null)), file("z/bird/embedding.bin", "x"),
  ];
  const dataset = await indexFolder(files, { hash });
  assert.deepEqual(dataset.photos.map((p) => [p.path, p.bundle?.dir ?? null]),
    [["dog.jpg", "out/dog"], ["x/cat.jpg", null], ["y/cat.jpg", "y/cat"]]);
  assert.deepEqual(dataset.strays.map((s) => s.dir), ["z/bird"]);
});

test("what is not a usable bundle is listed with the reason, and pairs with nothing", async () => {
  const files = [
    file("a.jpg", "a"), file("a/manifest.json", "{not json"), file("a/embedding.bin", "x"),
    file("b.jpg", "b"), file("b/manifest.json", manifest("b")),
    file("c.jpg", "c"), file("c/manifest.json", { format: "something-else" }), file("c/embedding.bin", "x"),
  ];
  const dataset = await indexFolder(files, { hash });
  assert.deepEqual(dataset.photos.map((p) => p.state), ["missing", "missing", "missing"]);
  assert.deepEqual(dataset.strays.map((s) => s.why), [
    "a: manifest.json is not valid JSON",
    "b: manifest.json has no embedding.bin beside it",
    "c: manifest.json does not describe a sam2enc bundle",
  ]);
  refuse(dataset.photos[0], "the bundle is corrupted");
  assert.equal(summary(dataset), "3 photos: 0 with a bundle, 2 without, 1 refused");
});

test("Next and Previous stop at the ends; read-ahead takes the next photo first, only those with a bundle", async () => {
  const files = ["p1", "p2", "p3", "p4"].flatMap((name, i) => [file(`${name}.jpg`, name),
    ...(i === 2 ? [] : [file(`${name}/manifest.json`, manifest(name)), file(`${name}/embedding.bin`, "x")])]);
  const dataset = await indexFolder(files, { hash });
  assert.deepEqual([step(dataset, 0, -1), step(dataset, 0, 1), step(dataset, 3, 1), step(dataset, 3, -1)], [-1, 1, -1, 2]);
  assert.deepEqual(ahead(dataset, 1).map((p) => p.path), ["p1.jpg", "p4.jpg"]); // p3 has no bundle
  assert.deepEqual(ahead(dataset, 0).map((p) => p.path), ["p2.jpg"]);
});

test("a file's path is relative to the opened folder", () => {
  assert.equal(relativePath({ name: "a.jpg", webkitRelativePath: "album/sub/a.jpg" }), "sub/a.jpg");
  assert.equal(relativePath({ name: "a.jpg", webkitRelativePath: "" }), "a.jpg");
});

test("a photo's objects come back from their record: labels, prompts, undo history, selection", () => {
  const objects = createObjects();
  click(objects.list[0].prompts, [10, 20], [10, 20], 1, 1);
  click(objects.list[0].prompts, [30, 40], [30, 40], 1, 0);
  undo(objects.list[0].prompts);
  const second = addObject(objects);
  rename(objects, second.id, "cup");
  click(second.prompts, [5, 5], [5, 5], 1, 1);
  const record = JSON.parse(JSON.stringify(toRecord(objects))); // as IndexedDB gives it back
  const back = fromRecord(record);
  assert.deepEqual(back.list.map((o) => [o.id, o.number, o.label, o.prompts.points, o.prompts.history.length, o.prompts.future.length]),
    [[1, 1, "object", [[10, 20, 1]], 1, 1], [2, 2, "cup", [[5, 5, 1]], 1, 0]]);
  assert.equal(back.selectedId, second.id);
  assert.equal(back.nextNumber, 3);
  assert.ok(back.list.every((o) => o.shown === null && o.prompts.promptGen === 0));
  undo(back.list[0].prompts); // the history works on the restored list
  assert.deepEqual(back.list[0].prompts.points, []);
  assert.ok(worthSaving(objects) && !worthSaving(createObjects()));
});

test("a record this page cannot read gives null, never a half-made photo", () => {
  const good = toRecord(createObjects());
  assert.ok(fromRecord(good));
  for (const bad of [null, {}, { ...good, version: 2 }, { ...good, list: [] },
    { ...good, list: [{ ...good.list[0], prompts: { ...good.list[0].prompts, points: [[1, 2]] } }] },
    { ...good, list: [{ ...good.list[0], label: " " }] }]) {
    assert.equal(fromRecord(bad), null, JSON.stringify(bad));
  }
});
