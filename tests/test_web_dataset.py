"""Dataset mode in headless chromium, as an annotator uses it: a folder opened through "Open folder",
prompts on two photos, a reload, the folder again (the work is back), Next to a photo with no bundle,
one COCO file for the folder — each mask held to what ``sam2enc decode`` makes of that photo's bundle
and prompts, and the CLI's ``decode BUNDLES_DIR --prompts … --coco …`` remaking the same file.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sam2enc.__main__ import main as cli
from sam2enc.bundle import read_bundle
from sam2enc.coco import rle_decode
from tests.helpers import best_mask as expected
from tests.helpers import encode_into, iou, page_server
from tests.replicate_standin import ReplicateStandIn
from tests.web.browser import browser_marks

REPORTS = Path(__file__).resolve().parents[1] / "build" / "test-reports"

pytestmark = browser_marks(pytest.mark.browser, pytest.mark.server, pytest.mark.slow, pytest.mark.node)

NAMES = {"a_coffee.jpg": "coffee", "b_cat.jpg": "chelsea_exif6", "c_rocket.jpg": "rocket"}


@pytest.fixture(scope="module")
def app(models_dir):
    with page_server(models_dir) as page:
        yield page


@pytest.fixture(scope="module")
def album(photos, models_dir, tmp_path_factory) -> Path:
    """Three photos; the first two encoded by `sam2enc encode` into album/bundles/, the third not."""
    root = tmp_path_factory.mktemp("dataset") / "album"
    root.mkdir()
    for name, photo in NAMES.items():
        shutil.copyfile(photos[photo], root / name)
    encode_into([root / "a_coffee.jpg", root / "b_cat.jpg"], root / "bundles", models_dir)
    return root


def photo_live(browser, name: str) -> dict:
    """Wait until ``name`` is the photo on screen and its bundle is ready (or the status says why not)."""
    browser.call(
        "await ctx.page.waitForFunction((n) => window.sam2enc.photoName === n && (window.sam2enc.ready"
        " || ['error', 'idle', 'refused'].includes(document.querySelector('#status').dataset.state)), args.n,"
        " {timeout: 120000})",
        n=name,
    )
    return browser.settled()


def open_folder(browser, album: Path) -> None:
    browser.call("await ctx.page.setInputFiles('#folder', args.dir)", dir=str(album))


def test_a_folder_annotated_reloaded_and_exported_as_one_coco(
    browser, app, album, decoder, models_dir, tmp_path
):
    bundles = {name: read_bundle(album / "bundles" / Path(name).stem) for name in list(NAMES)[:2]}
    first = [(200, 150, 1)]
    second = [(220, 150, 1), (60, 60, 0)]

    browser.open(app)
    open_folder(browser, album)
    state = photo_live(browser, "a_coffee.jpg")
    assert state["ready"] and state["status"].startswith("Ready"), state
    summary = browser.call("return ctx.page.textContent('#dataset-summary')")
    assert summary.startswith("3 photos: 2 with a bundle, 1 without"), summary
    browser.click(*first[0][:2])
    assert iou(browser.canvas_mask(), expected(decoder, bundles["a_coffee.jpg"], first)) > 0  # on screen

    # The moment Next is pressed, the photo being left takes no more prompts and no "Ready" is shown.
    at_once = browser.call(
        "return ctx.page.evaluate(() => { document.querySelector('#next-photo').click();"
        " return [document.querySelector('#status').textContent, window.sam2enc.ready]; })"
    )
    assert at_once == ["Opening b_cat.jpg (2 of 3)…", False], at_once
    state = photo_live(browser, "b_cat.jpg")
    assert state["ready"] and state["status"].startswith("Ready"), state
    browser.click(*second[0][:2])
    state = browser.click(*second[1][:2], button="right")
    assert state["points"] == [list(p) for p in second], state
    browser.screenshot(REPORTS / "web-dataset.png")

    # A reload, and the folder again: the work on both photos is back.
    browser.call("await ctx.page.reload()")
    open_folder(browser, album)
    state = photo_live(browser, "a_coffee.jpg")
    assert state["points"] == [list(first[0])], state
    browser.call("await ctx.page.click('#next-photo')")
    state = photo_live(browser, "b_cat.jpg")
    assert state["points"] == [list(p) for p in second], state
    want = expected(decoder, bundles["b_cat.jpg"], second)
    assert iou(browser.canvas_mask(), want) > 0.99  # decoded again from the saved prompts
    browser.call("await ctx.page.click('#next-photo')")
    state = photo_live(browser, "c_rocket.jpg")
    assert "no bundle" in state["status"] and not state["ready"], state
    assert browser.call("return ctx.page.isDisabled('#next-photo')") is True

    (coco_path,) = browser.download("#download-coco-dataset", tmp_path / "dataset")
    document = json.loads(Path(coco_path).read_text())
    assert [i["file_name"] for i in document["images"]] == list(NAMES)
    for image, name in zip(document["images"], NAMES):
        assert image["sam2enc"]["sha256"] == hashlib.sha256((album / name).read_bytes()).hexdigest()
    assert [a["image_id"] for a in document["annotations"]] == [1, 2]
    made = [("a_coffee.jpg", first), ("b_cat.jpg", second)]
    for annotation, (name, prompts) in zip(document["annotations"], made):
        mask = rle_decode(annotation["segmentation"])
        assert iou(mask, expected(decoder, bundles[name], prompts)) >= 0.999, name
        assert annotation["sam2enc"]["points"] == [list(p) for p in prompts]

    # The CLI remakes the same masks from the same file, pairing images with bundles by their sha256.
    out = tmp_path / "remade.json"
    argv = ["decode", str(album / "bundles"), "--prompts", str(coco_path), "--coco", str(out)]
    assert cli([*argv, "--models-dir", str(models_dir)]) == 0
    remade = json.loads(out.read_text())
    assert [i["file_name"] for i in remade["images"]] == list(NAMES)
    for ours, theirs in zip(document["annotations"], remade["annotations"]):
        assert theirs["image_id"] == ours["image_id"]
        assert iou(rle_decode(theirs["segmentation"]), rle_decode(ours["segmentation"])) >= 0.999

    # "Forget saved work": the first photo opens empty again.
    browser.call("await ctx.page.click('#forget-dataset')")
    browser.call("await ctx.page.click('#dataset-list li:first-child button')")
    state = photo_live(browser, "a_coffee.jpg")
    assert state["points"] == [] and not np.any(browser.canvas_mask()), state


def test_a_bundle_that_fails_its_checks_is_refused_with_its_reason(browser, app, album, tmp_path):
    """A corrupted embedding.bin: the photo is shown, listed as refused with the reason, nothing is live."""
    broken = tmp_path / "broken"
    shutil.copytree(album, broken)
    payload = broken / "bundles" / "a_coffee" / "embedding.bin"
    data = bytearray(payload.read_bytes())
    data[1000] ^= 0xFF
    payload.write_bytes(bytes(data))

    browser.open(app)
    open_folder(browser, broken)
    state = photo_live(browser, "a_coffee.jpg")
    assert state["state"] == "error" and not state["ready"], state
    assert "its bundle was refused" in state["status"] and "sha256" in state["status"], state
    assert ".." not in state["status"], state  # one sentence, one full stop
    item = browser.call("return ctx.page.textContent('#dataset-list li:first-child')")
    assert "refused" in item and "sha256" in item, item
    state = browser.click(200, 150)
    assert state["points"] == [] and state["state"] == "refused", state  # nothing to click on
    browser.call("await ctx.page.click('#next-photo')")
    assert photo_live(browser, "b_cat.jpg")["ready"]


def test_a_photo_without_a_bundle_encoded_on_replicate_joins_the_folder(
    browser, album, models_dir, encoder, decoder, photos, tmp_path
):
    """Encode on the folder's photo without a bundle: the new bundle becomes that photo's (listed as
    ready, its work saved), and the dataset COCO holds its mask."""
    from sam2enc.pipeline import encode

    token = "r8_dataset_token"
    standin = ReplicateStandIn(models_dir, token)
    try:
        with page_server(models_dir, upstream=f"{standin.url}/v1") as page:
            browser.open(page)
            open_folder(browser, album)
            photo_live(browser, "a_coffee.jpg")
            browser.call("await ctx.page.click('#dataset-list li:last-child button')")
            state = photo_live(browser, "c_rocket.jpg")
            assert "no bundle" in state["status"] and "press Encode" in state["status"], state
            browser.call("await ctx.page.click('summary')")
            browser.call("await ctx.page.fill('#token', args.t)", t=token)
            browser.call("await ctx.page.fill('#version', 'me/sam2enc')")
            browser.call("await ctx.page.click('#encode')")
            state = photo_live(browser, "c_rocket.jpg")
            assert state["ready"], state
            item = browser.call("return ctx.page.textContent('#dataset-list li:last-child')")
            assert "bundle ready" in item, item
            state = browser.click(300, 200)
            want = expected(decoder, encode(photos["rocket"], encoder), [(300, 200, 1)])
            assert iou(browser.canvas_mask(), want) > 0.99, "the mask on screen comes from the new bundle"
            (coco_path,) = browser.download("#download-coco-dataset", tmp_path / "dataset")
    finally:
        standin.close()
    document = json.loads(Path(coco_path).read_text())
    (annotation,) = [a for a in document["annotations"] if a["image_id"] == 3]
    assert iou(rle_decode(annotation["segmentation"]), want) >= 0.999


def test_a_browser_that_keeps_nothing_says_so_and_still_annotates(browser, app, album):
    """No IndexedDB (a locked-down or private window): the folder opens and clicks work, and the panel
    says that nothing is kept, so that the COCO is downloaded before the page is closed."""
    browser.open("about:blank")
    no_store = "() => Object.defineProperty(window, 'indexedDB', {value: undefined})"
    browser.call(f"await ctx.page.addInitScript({no_store})")
    browser.call("await ctx.page.goto(args.url)", url=app)
    open_folder(browser, album)
    photo_live(browser, "a_coffee.jpg")
    said = browser.call("return ctx.page.textContent('#dataset-status')")
    assert said.startswith("This browser keeps no saved work here"), said
    assert "download the dataset's COCO" in said, said
    assert browser.click(200, 150)["points"] == [[200, 150, 1]]
