"""Promise: `sam2enc polygons` turns a COCO file's RLE masks into polygons that pycocotools rasterises back
to the mask with its holes filled (exactly, at tolerance 0; within a pixel of the outline by default),
keeps everything else in the document, and refuses bad input in one sentence without writing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageFilter
from pycocotools import mask as mask_utils
from scipy import ndimage

from sam2enc import coco
from sam2enc.__main__ import main
from sam2enc.polygons import document_polygons, mask_polygons
from tests.conftest import skimage_data
from tests.test_coco import annotated, coffee, synthetic_masks  # noqa: F401 (coffee: a fixture)


def rasterised(polygons: list[list[int]], height: int, width: int) -> np.ndarray:
    """What pycocotools (and so every COCO reader built on it) makes of the polygons."""
    if not polygons:
        return np.zeros((height, width), bool)
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))).astype(bool)


def filled(mask: np.ndarray) -> np.ndarray:
    """The mask with its holes filled: background not reachable from the border, 8-connected."""
    return ndimage.binary_fill_holes(mask, structure=np.ones((3, 3)))


def real_masks() -> dict[str, np.ndarray]:
    """Objects of real photos at their own sizes: the coins, thresholded, and the astronaut's bright parts
    with a smooth outline, as the decoder's upsampled logits give (a blur before the threshold)."""
    coins = np.asarray(Image.open(skimage_data() / "coins.png").convert("L")) > 110
    gray = Image.open(skimage_data() / "astronaut.png").convert("L")
    astronaut = np.asarray(gray.filter(ImageFilter.GaussianBlur(4))) > 150
    return {"coins": coins, "astronaut": astronaut}


# test_coco's masks, less its checkerboard (120,000 one-pixel regions: a minute in pycocotools' merge)
MASKS = {name: m for name, m in synthetic_masks().items() if "checkerboard" not in name} | real_masks()


@pytest.mark.parametrize("name, mask", MASKS.items())
def test_exact_polygons_rasterise_to_the_mask_with_holes_filled(name, mask):
    polygons = mask_polygons(mask, tolerance=0)
    assert all(len(p) >= 6 and len(p) % 2 == 0 for p in polygons)
    assert (rasterised(polygons, *mask.shape) == filled(mask)).all()


def test_regions_touching_at_a_corner_are_two_polygons_and_a_hole_is_filled():
    diagonal = np.zeros((4, 4), bool)
    diagonal[0, 0] = diagonal[1, 1] = True
    assert mask_polygons(diagonal, 0) == [[0, 0, 1, 0, 1, 1, 0, 1], [1, 1, 2, 1, 2, 2, 1, 2]]
    ring = np.zeros((7, 7), bool)
    ring[1:6, 1:6] = True
    ring[3, 3] = False
    assert mask_polygons(ring, 0) == [[1, 1, 6, 1, 6, 6, 1, 6]]
    assert mask_polygons(np.zeros((3, 3), bool)) == []


@pytest.mark.parametrize("tolerance", [0, 1, 5])
def test_regions_a_pixel_wide_are_kept_at_every_tolerance(tolerance):
    """A 1×10 line, a 10×1 line and a single pixel: simplified, each is within 1 px of a line and would
    vanish, while bbox and area still count it."""
    mask = np.zeros((20, 30), dtype=bool)
    mask[2:12, 3] = True  # 1×10, vertical
    mask[15, 10:20] = True  # 10×1, horizontal
    mask[5, 25] = True  # one pixel
    polygons = mask_polygons(mask, tolerance)
    assert len(polygons) == 3
    assert (rasterised(polygons, 20, 30) == mask).all()


@pytest.mark.parametrize("name", ["coins", "astronaut"])
def test_default_tolerance_keeps_the_outline_with_fewer_vertices(name):
    mask = real_masks()[name]
    exact, simple = mask_polygons(mask, 0), mask_polygons(mask)
    target, got = filled(mask), rasterised(simple, *mask.shape)
    iou = (target & got).sum() / (target | got).sum()
    assert iou >= 0.97, iou
    assert sum(map(len, simple)) < 0.6 * sum(map(len, exact))
    # every kept vertex lies on the exact outline: simplification only drops corners
    corners = {tuple(p[i : i + 2]) for p in exact for i in range(0, len(p), 2)}
    assert all(tuple(p[i : i + 2]) in corners for p in simple for i in range(0, len(p), 2))


@pytest.fixture
def document() -> dict:
    photo = np.zeros((60, 90), bool)
    cup = photo.copy()
    cup[10:40, 20:50] = True
    cup[20:25, 30:35] = False  # a hole: polygons fill it
    crowd, empty = cup.copy(), photo.copy()
    objects = [
        coco.AnnotatedObject(coco.Prompts(points=((30.0, 15.0, 1),), label="cup"), cup),
        coco.AnnotatedObject(coco.Prompts(box=(1.0, 2.0, 30.0, 40.0), label="crowd"), crowd),
        coco.AnnotatedObject(coco.Prompts(points=((5.0, 5.0, 1),), label="nothing"), empty),
    ]
    document = coco.coco_document("cup.jpg", 90, 60, objects)
    document["annotations"][1]["iscrowd"] = 1
    return document


def test_document_keeps_all_but_the_segmentation(document, tmp_path):
    before = json.loads(json.dumps(document))
    converted, kept = document_polygons(document)
    assert document == before, "the input document is not modified"
    assert kept == 1  # the empty mask keeps its RLE
    cup, crowd, empty = converted["annotations"]
    assert cup["segmentation"] == [[20, 10, 50, 10, 50, 40, 20, 40]]
    assert crowd["segmentation"] == before["annotations"][1]["segmentation"]  # crowd: RLE by convention
    assert empty["segmentation"] == before["annotations"][2]["segmentation"]
    for new, old in zip(converted["annotations"], before["annotations"]):
        assert {k: v for k, v in new.items() if k != "segmentation"} == {
            k: v for k, v in old.items() if k != "segmentation"
        }
    assert converted["images"] == before["images"] and converted["categories"] == before["categories"]
    # the prompts still remake the document (sam2enc decode --prompts reads the polygon file too)
    polygon_file = coco.write_json(converted, tmp_path / "polygons.json")
    rle_file = coco.write_json(before, tmp_path / "rle.json")
    assert coco.read_prompts(polygon_file).objects == coco.read_prompts(rle_file).objects


def test_cli_writes_the_polygon_file(document, tmp_path, capsys):
    source, out = coco.write_json(document, tmp_path / "in.json"), tmp_path / "out" / "polygons.json"
    assert main(["polygons", str(source), "--out", str(out), "--tolerance", "0"]) == 0
    assert json.loads(out.read_text()) == document_polygons(document, 0)[0]
    assert f"3 annotations as polygons (1 empty kept as RLE) -> {out}" in capsys.readouterr().out


@pytest.mark.parametrize(
    "content, args, message",
    [
        (None, [], "does not exist"),
        ("{not json", [], "is not a JSON file"),
        ('{"images": []}', [], "is not a COCO document: it has no 'annotations' list"),
        ('{"annotations": [{"segmentation": {"size": [2, 2], "counts": [1]}}]}', [], "annotation 1: its RLE"),
        ('{"annotations": []}', ["--tolerance", "-1"], "--tolerance is a distance in pixels, 0 or more"),
    ],
)
def test_bad_input_is_one_sentence_and_writes_nothing(content, args, message, tmp_path, capsys):
    source, out = tmp_path / "in.json", tmp_path / "out.json"
    if content is not None:
        source.write_text(content)
    assert main(["polygons", str(source), "--out", str(out), *args]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and message in error and error.count("\n") == 1, error
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ([source.name] if content else [])


@pytest.mark.parametrize("tolerance, least_iou", [(0, 1.0), (1, 0.95)])
def test_decoded_objects_through_the_cli_load_in_pycocotools(coffee, tolerance, least_iou, tmp_path):  # noqa: F811
    """The decoder's masks of coffee.png, as `decode --coco` writes them, through `sam2enc polygons` and
    read back by pycocotools' COCO API: what a training pipeline sees."""
    from pycocotools.coco import COCO

    document = coco.coco_document("coffee.png", coffee["width"], coffee["height"], annotated(coffee))
    source, out = coco.write_json(document, tmp_path / "rle.json"), tmp_path / "polygons.json"
    assert main(["polygons", str(source), "--out", str(out), "--tolerance", str(tolerance)]) == 0
    api = COCO(str(out))
    for ann, mask in zip(api.loadAnns(api.getAnnIds(imgIds=1)), coffee["masks"]):
        assert isinstance(ann["segmentation"], list)
        got, target = api.annToMask(ann).astype(bool), filled(mask)
        assert (got & target).sum() / (got | target).sum() >= least_iou
