"""COCO export: RLE byte-identical to pycocotools in Python and JS, one document, remade by the CLI.

Promises kept here:
- ``sam2enc.coco``'s NumPy encoder writes the bytes pycocotools writes (column-major runs, first run of
  0s, the compressed string), for odd sizes, empty and full masks and real decoder masks, and decodes
  them back; bbox and area are pycocotools' ``toBbox`` and ``area``.
- the document loads in pycocotools' ``COCO`` and its masks are the decoder's;
- ``sam2enc decode BUNDLE --prompts FILE --coco OUT.json`` decodes each object like ``Decoder.predict``,
  remakes the same document from its own output, and refuses a bad prompts file in one sentence without
  writing anything;
- ``lib/coco.js`` (``node --test tests/js/coco.test.mjs``) writes the same RLE strings, bbox, area and
  document as Python, from fixtures this file writes, and the same dataset document byte for byte
  (``cocoDataset`` and ``coco_dataset``; the CLI's dataset decode is tests/test_dataset_decode.py).

Cost: ~1 s encoding coffee.png once, three CLI runs (~3 s each on 2 cores), node ~1 s.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from sam2enc import coco
from sam2enc.__main__ import main
from sam2enc.bundle import read_bundle
from sam2enc.pipeline import encode_to_dir
from tests.helpers import cli
from tests.node import node_test

ROOT = Path(__file__).resolve().parents[1]
NODE_TEST = ROOT / "tests" / "js" / "coco.test.mjs"

# Prompts in pixels of coffee.png (600×400): the cup (label "cup"), the cup minus the saucer, a box.
OBJECTS = [
    {"points": [[300, 180, 1]], "box": None, "label": "cup"},
    {"points": [[300, 180, 1], [300, 330, 0]], "box": None, "label": "cup"},
    {"points": [[420, 150, 0]], "box": [140, 40, 470, 380], "label": "saucer"},
]


def synthetic_masks() -> dict[str, np.ndarray]:
    """Odd sizes, empty and full masks, single pixels in corners and many short runs."""
    rng = np.random.default_rng(19)
    masks = {
        "1x1 empty": np.zeros((1, 1), bool),
        "1x1 full": np.ones((1, 1), bool),
        "3x5 empty": np.zeros((3, 5), bool),
        "7x13 full": np.ones((7, 13), bool),
        "1x9 row": rng.random((1, 9)) < 0.5,
        "9x1 column": rng.random((9, 1)) < 0.5,
        "13x7 random": rng.random((13, 7)) < 0.5,
        "101x57 sparse": rng.random((101, 57)) < 0.05,
        "57x101 dense": rng.random((57, 101)) < 0.95,
        "401x599 checkerboard": (np.add.outer(np.arange(401), np.arange(599)) % 2).astype(bool),
    }
    corner = np.zeros((31, 17), bool)
    corner[0, 0] = corner[-1, -1] = True
    masks["31x17 corners"] = corner
    blob = np.zeros((333, 517), bool)
    blob[20:300, 3:500] = True  # long runs: multi-group numbers, negative differences
    blob[100:120, 200:260] = False
    masks["333x517 blob"] = blob
    return masks


def pycoco(mask: np.ndarray) -> dict:
    return mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))


# --- RLE in Python -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name, mask", synthetic_masks().items(), ids=list(synthetic_masks()))
def test_numpy_rle_is_byte_identical_to_pycocotools(name, mask):
    expected = pycoco(mask)
    assert coco.compress_counts(coco.rle_counts(mask)) == expected["counts"].decode("ascii")
    assert coco.rle_encode(mask) == {"size": list(mask.shape), "counts": expected["counts"].decode("ascii")}
    assert coco.bbox(mask) == mask_utils.toBbox(expected).astype(int).tolist()
    assert coco.area(mask) == int(mask_utils.area(expected))


@pytest.mark.parametrize("name, mask", synthetic_masks().items(), ids=list(synthetic_masks()))
def test_rle_round_trips(name, mask):
    rle = coco.rle_encode(mask)
    decoded = coco.rle_decode(rle)
    assert decoded.shape == mask.shape and (decoded == mask).all()
    assert (mask_utils.decode({**rle, "counts": rle["counts"].encode()}) == mask).all()
    counts = coco.rle_counts(mask)
    assert coco.decompress_counts(rle["counts"]) == counts
    assert (coco.rle_decode({"size": list(mask.shape), "counts": counts}) == mask).all()


def test_counts_start_with_the_run_of_zeros_and_read_down_columns():
    mask = np.array([[1, 1, 0], [0, 1, 1]], bool)  # columns: (1,0) (1,1) (0,1)
    assert coco.rle_counts(mask) == [0, 1, 1, 2, 1, 1]
    assert coco.rle_counts(np.zeros((0, 4), bool)) == [0]


def test_rle_encode_needs_no_pycocotools(monkeypatch):
    mask = synthetic_masks()["333x517 blob"]
    with_pycocotools = coco.rle_encode(mask)
    monkeypatch.setitem(sys.modules, "pycocotools", None)  # import pycocotools now raises ImportError
    monkeypatch.delitem(sys.modules, "pycocotools.mask", raising=False)
    assert coco.rle_encode(mask) == with_pycocotools


def test_rle_decode_refuses_counts_for_another_size():
    with pytest.raises(ValueError, match="not the 4×3 photo's 12 pixels"):
        coco.rle_decode({"size": [3, 4], "counts": [5, 6]})
    with pytest.raises(ValueError, match="not a character"):
        coco.decompress_counts("0 1")


# --- real masks, the document, the CLI ---------------------------------------------------------------
@pytest.fixture(scope="module")
def coffee(tmp_path_factory, photos, encoder, decoder):
    """coffee.png's bundle and the Python decoder's best mask for each of OBJECTS."""
    out = tmp_path_factory.mktemp("coco")
    bundle_dir = encode_to_dir(photos["coffee"], encoder, out / "bundle")
    bundle = read_bundle(bundle_dir)
    masks = []
    for obj in OBJECTS:
        prediction = decoder.predict(bundle, points=obj["points"], box=obj["box"])
        masks.append(prediction.masks[prediction.best])
    return {
        "dir": out,
        "bundle": bundle_dir,
        "width": bundle.original_width,
        "height": bundle.original_height,
        "masks": masks,
    }


def annotated(coffee) -> list[coco.AnnotatedObject]:
    return [
        coco.AnnotatedObject(coco.parse_prompts({"objects": [obj]}).objects[0], mask)
        for obj, mask in zip(OBJECTS, coffee["masks"])
    ]


def test_decoder_masks_encode_like_pycocotools(coffee):
    assert any(0 < m.mean() < 1 for m in coffee["masks"]), "the fixture should hold a partial mask"
    for mask in coffee["masks"]:
        assert coco.compress_counts(coco.rle_counts(mask)) == pycoco(mask)["counts"].decode()
        assert (coco.rle_decode(coco.rle_encode(mask)) == mask).all()


def test_document_loads_in_pycocotools(coffee, tmp_path):
    document = coco.coco_document("coffee.png", coffee["width"], coffee["height"], annotated(coffee))
    previous = os.umask(0o022)
    try:
        path = coco.write_json(document, tmp_path / "coco.json")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644, "readable like any file the user writes (not 0600)"
    api = COCO(str(path))
    assert api.loadImgs(1)[0] == {"id": 1, "file_name": "coffee.png", "width": 600, "height": 400}
    assert [c["name"] for c in api.loadCats(api.getCatIds())] == ["cup", "saucer"]
    anns = api.loadAnns(api.getAnnIds(imgIds=1))
    assert [a["category_id"] for a in anns] == [1, 1, 2]
    for ann, obj, mask in zip(anns, OBJECTS, coffee["masks"]):
        assert (api.annToMask(ann) == mask).all()
        assert ann["bbox"] == coco.bbox(mask) and ann["area"] == mask.sum() and ann["iscrowd"] == 0
        assert ann["sam2enc"] == {"points": obj["points"], "box": obj["box"]}


def test_cli_decodes_every_object_and_remakes_its_own_document(coffee, models_dir, decoder, tmp_path):
    prompts = tmp_path / "objects.json"
    prompts.write_text(json.dumps({"objects": OBJECTS, "file_name": "coffee.png"}))
    first = cli(
        "decode",
        coffee["bundle"],
        "--prompts",
        prompts,
        "--coco",
        tmp_path / "a.json",
        "--models-dir",
        models_dir,
    )
    assert first.returncode == 0, first.stderr
    assert "object 3 (saucer)" in first.stdout and "wrote 3 annotation(s)" in first.stdout
    document = json.loads((tmp_path / "a.json").read_text())
    expected = coco.coco_document("coffee.png", coffee["width"], coffee["height"], annotated(coffee))
    assert document == expected
    for ann, mask in zip(document["annotations"], coffee["masks"]):
        assert (
            mask_utils.decode({**ann["segmentation"], "counts": ann["segmentation"]["counts"].encode()})
            == mask
        ).all()

    # Its own output as the prompts: the same document again, labels and file name included.
    again = cli(
        "decode",
        coffee["bundle"],
        "--prompts",
        tmp_path / "a.json",
        "--coco",
        tmp_path / "b.json",
        "--models-dir",
        models_dir,
    )
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "b.json").read_text()) == document


def test_cli_single_object_from_points(coffee, models_dir, tmp_path):
    result = cli(
        "decode",
        coffee["bundle"],
        "--point",
        "300,180,1",
        "--coco",
        tmp_path / "one.json",
        "--models-dir",
        models_dir,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads((tmp_path / "one.json").read_text())
    assert document["images"][0]["file_name"] == "bundle"  # no photo name given: the bundle's directory
    assert [c["name"] for c in document["categories"]] == ["object"]
    assert (coco.rle_decode(document["annotations"][0]["segmentation"]) == coffee["masks"][0]).all()


COCO_BASE = {"images": [{"id": 1, "file_name": "c.png", "width": 600, "height": 400}], "categories": []}
BAD_PROMPTS = [
    ("{", "is not valid JSON"),
    ("[]", 'is neither a COCO file written by sam2enc (with "annotations") nor'),
    ({"objects": []}, '"objects" must be a non-empty list'),
    (
        {"objects": [{"points": [[300, 180]]}]},
        "object 1: each point is [x, y, label] with numbers, got [300, 180]",
    ),
    ({"objects": [{"points": [[1, 1, 1]]}, {"points": [[1, 1, 2]]}]}, "object 2: a point's label is 1"),
    ({"objects": [{"points": [[1, 1, True]]}]}, "each point is [x, y, label] with numbers"),
    ({"objects": [{"box": [1, 2, 3]}]}, '"box" is [x0, y0, x1, y1] or null'),
    ({"objects": [{"points": []}]}, "object 1 has neither a point nor a box"),
    ({"objects": [{"points": [[1, 1, 1]], "label": ""}]}, '"label" must be a non-empty string'),
    (
        {"objects": [{"points": [[1, 1, 1]]}, {"points": [[9999, 1, 1]]}]},
        "object 2: (9999, 1) lies outside the 600×400",
    ),
    ({"objects": [{"box": [50, 50, 10, 10]}]}, "object 1: a box needs x0 < x1"),
    ({**COCO_BASE, "annotations": [{"id": 1}]}, 'annotation 1 has no "sam2enc" prompts'),
    ({**COCO_BASE, "images": [], "annotations": [{}]}, "describes exactly one image, this one has 0"),
    (
        {
            **COCO_BASE,
            "images": [{"id": 1, "width": 640, "height": 480}],
            "annotations": [{"sam2enc": {"points": [[1, 1, 1]]}}],
        },
        "the prompts were made on a 640×480 photo, the bundle's photo is 600×400",
    ),
]


@pytest.mark.parametrize("content, message", BAD_PROMPTS, ids=[m for _, m in BAD_PROMPTS])
def test_bad_prompt_files_are_one_sentence_and_write_nothing(
    coffee, models_dir, tmp_path, capsys, content, message
):
    prompts = tmp_path / "prompts.json"
    prompts.write_text(content if isinstance(content, str) else json.dumps(content))
    out = tmp_path / "out" / "coco.json"
    code = main(
        [
            "decode",
            str(coffee["bundle"]),
            "--prompts",
            str(prompts),
            "--coco",
            str(out),
            "--models-dir",
            str(models_dir),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not out.exists() and not (out.parent.exists() and any(out.parent.iterdir()))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--prompts", "p.json"], "add --coco OUT.json"),
        (["--prompts", "p.json", "--coco", "c.json", "--out", "m.png"], "--out writes one mask PNG"),
        (["--prompts", "p.json", "--coco", "c.json", "--point", "1,1,1"], "not both"),
        (["--coco", "c.json"], "give --prompts FILE, or --point/--box"),
        ([], "decode writes its mask to --out MASK.png"),
    ],
)
def test_decode_flags_combine_one_way(coffee, models_dir, tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.json").write_text(json.dumps({"objects": OBJECTS}))
    code = main(["decode", str(coffee["bundle"]), *args, "--models-dir", str(models_dir)])
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "c.json").exists() and not (tmp_path / "m.png").exists()


# --- RLE and the document in JS, against pycocotools and Python --------------------------------------
@pytest.fixture(scope="module")
def js_fixtures(coffee) -> Path:
    """Masks as raw row-major bytes with pycocotools' answers, and a document made by coco_document."""
    out = coffee["dir"] / "js"
    out.mkdir()
    cases = []
    masks = {**synthetic_masks(), **{f"decoder {i + 1}": m for i, m in enumerate(coffee["masks"])}}
    for i, (name, mask) in enumerate(masks.items()):
        path = out / f"{i}.mask"
        path.write_bytes(mask.astype(np.uint8).tobytes())  # row-major, 0/1
        expected = pycoco(mask)
        cases.append(
            {
                "name": name,
                "width": mask.shape[1],
                "height": mask.shape[0],
                "mask": str(path),
                "counts": expected["counts"].decode("ascii"),
                "uncompressed": coco.rle_counts(mask),
                "bbox": mask_utils.toBbox(expected).astype(int).tolist(),
                "area": int(mask_utils.area(expected)),
            }
        )
    document = {
        "fileName": "coffee.png",
        "width": coffee["width"],
        "height": coffee["height"],
        "objects": [
            {**obj, "mask": cases[len(synthetic_masks()) + i]["mask"]} for i, obj in enumerate(OBJECTS)
        ],
        "expected": coco.coco_document("coffee.png", coffee["width"], coffee["height"], annotated(coffee)),
    }
    dataset = js_dataset(coffee, {c["name"]: c["mask"] for c in cases})
    (out / "fixtures.json").write_text(json.dumps({"cases": cases, "document": document, "dataset": dataset}))
    return out / "fixtures.json"


def js_dataset(coffee, mask_files: dict[str, str]) -> dict:
    """A dataset for lib/coco.js's cocoDataset: photos with and without sha256 and objects, non-ASCII and
    nested file names, fractional prompts, a label reused across photos; and what coco_dataset makes of
    it, parsed and as bytes (json.dumps with JSON.stringify's separators)."""
    odd = synthetic_masks()["13x7 random"]
    photos = [
        {
            "fileName": "plage/café.png",
            "width": coffee["width"],
            "height": coffee["height"],
            "sha256": "ab" * 32,
            "objects": [{**obj, "mask": mask_files[f"decoder {i + 1}"]} for i, obj in enumerate(OBJECTS)],
        },
        {"fileName": "empty.jpg", "width": 5, "height": 3, "sha256": "cd" * 32, "objects": []},
        {
            "fileName": "sub/odd.png",
            "width": 7,
            "height": 13,
            "objects": [
                {
                    "points": [[1.5, 2.25, 1]],
                    "box": None,
                    "label": "plate",
                    "mask": mask_files["13x7 random"],
                },
                {
                    "points": [],
                    "box": [0.5, 1, 6, 12.75],
                    "label": "saucer",
                    "mask": mask_files["13x7 random"],
                },
            ],
        },
    ]
    masks = [coffee["masks"], [], [odd, odd]]
    expected = coco.coco_dataset(
        [
            coco.AnnotatedImage(
                photo["fileName"],
                photo["width"],
                photo["height"],
                tuple(
                    coco.AnnotatedObject(coco.parse_prompts({"objects": [obj]}).objects[0], mask)
                    for obj, mask in zip(photo["objects"], photo_masks)
                ),
                photo.get("sha256"),
            )
            for photo, photo_masks in zip(photos, masks)
        ]
    )
    assert [c["name"] for c in expected["categories"]] == ["cup", "saucer", "plate"]
    assert "sam2enc" not in expected["images"][2]
    return {
        "photos": photos,
        "expected": expected,
        "expectedJson": json.dumps(expected, separators=(",", ":"), ensure_ascii=False),
    }


@pytest.mark.node
def test_js_coco_matches_pycocotools_and_python(js_fixtures, capsys):
    node_test("coco.test.mjs", env={"SAM2ENC_COCO_FIXTURES": str(js_fixtures)})
    out = capsys.readouterr().out
    assert "the document sam2enc/coco.py builds" in out, "the fixture tests did not run"
    assert "the dataset document sam2enc/coco.py builds" in out, "the dataset fixture test did not run"
