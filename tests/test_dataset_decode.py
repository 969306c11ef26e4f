"""A dataset's COCO file remade from a folder of bundles: ``sam2enc decode BUNDLES_DIR --prompts
dataset.json --coco OUT.json`` (sam2enc/dataset.py, coco.coco_dataset).

Promises kept here:
- every annotated image is paired with its bundle, by the photo's sha256 where both sides have one, by
  folder name and size where one side has none (an older bundle), anywhere under the folder;
- its masks are ``Decoder.predict``'s best masks for that bundle and those prompts, exactly;
- the document keeps every image (one without objects or bundle too) in order with its file_name, size
  and sha256, renumbers images and annotations 1..n in image order, then object order, and categories
  by first use; decoding its own output gives it again;
- a photo's document is the dataset of that photo alone, unchanged (no sha256 key);
- an annotated image without a bundle, a size that is not its bundle's, two candidate bundles or a
  malformed dataset are one sentence naming the file, image and annotation, and OUT.json stays as it was;
- the JS ``cocoDataset`` writes the same bytes: tests/test_coco.py's node test (fixtures there).

Cost: two ~1 s encodes (coffee, astronaut), one CLI run (~3 s on 2 cores), one in-process decode.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from sam2enc import coco
from sam2enc.__main__ import main
from sam2enc.bundle import MANIFEST_FILE, read_bundle
from sam2enc.dataset import DatasetImage, FoundBundle, find_bundles, pair, parse_dataset
from sam2enc.errors import Sam2EncError
from sam2enc.pipeline import encode_to_dir
from tests.helpers import cli

# The dataset as the page writes it, before ids are renumbered: images 10, 20, 30 (rocket: no objects),
# categories with their own ids, annotations not in image order.
OBJECTS = {
    "coffee.png": [
        {"points": [[300, 180, 1]], "box": None, "label": "cup"},
        {"points": [[420, 150, 0]], "box": [140, 40, 470, 380], "label": "saucer"},
    ],
    "beach/astronaut.png": [
        {"points": [[260, 120, 1], [250, 400, 0]], "box": None, "label": "person"},
        {"points": [[330, 420, 1]], "box": None, "label": "cup"},
    ],
    "rocket.jpg": [],
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def upright_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return ImageOps.exif_transpose(image).size


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, photos, encoder, decoder, models_dir):
    """photos/ (coffee.png, beach/astronaut.png, rocket.jpg), bundles/ (coffee's in a folder named
    otherwise, astronaut's without source.sha256, none for rocket), dataset.json, and the expected masks."""
    root = tmp_path_factory.mktemp("dataset")
    sources = {"coffee.png": "coffee", "beach/astronaut.png": "astronaut", "rocket.jpg": "rocket"}
    for name, key in sources.items():
        (root / "photos" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(photos[key], root / "photos" / name)
    bundles = root / "bundles"
    # Paired by sha256 only: its folder is not named after the photo.
    coffee_bundle = encode_to_dir(root / "photos" / "coffee.png", encoder, bundles / "2024" / "img-0001")
    # An older bundle, before manifests had "source": paired by its folder's name and the photo's size.
    astronaut_bundle = encode_to_dir(
        root / "photos" / "beach" / "astronaut.png", encoder, bundles / "astronaut"
    )
    manifest = json.loads((astronaut_bundle / MANIFEST_FILE).read_text())
    del manifest["source"]
    (astronaut_bundle / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    assert read_bundle(astronaut_bundle).source_sha256 is None

    images, annotations = [], []
    for image_id, name in zip((10, 20, 30), OBJECTS):
        width, height = upright_size(root / "photos" / name)
        sha = sha256(root / "photos" / name)
        images.append(
            {"id": image_id, "file_name": name, "width": width, "height": height, "sam2enc": {"sha256": sha}}
        )
    category_ids = {"person": 5, "cup": 9, "saucer": 2}
    order = [("beach/astronaut.png", 0), ("coffee.png", 0), ("beach/astronaut.png", 1), ("coffee.png", 1)]
    for ann_id, (name, index) in enumerate(order, start=7):
        obj = OBJECTS[name][index]
        image_id = next(i["id"] for i in images if i["file_name"] == name)
        annotations.append(
            {
                "id": ann_id,
                "image_id": image_id,
                "category_id": category_ids[obj["label"]],
                "segmentation": {"size": [1, 1], "counts": "0"},  # stale: the decoder's masks replace it
                "sam2enc": {"points": obj["points"], "box": obj["box"]},
            }
        )
    document = {
        "images": images,
        "categories": [{"id": i, "name": n, "supercategory": ""} for n, i in category_ids.items()],
        "annotations": annotations,
    }
    (root / "dataset.json").write_text(json.dumps(document))

    # What the decoder gives for each object on its photo's bundle.
    masks = {}
    for name, bundle_dir in (("coffee.png", coffee_bundle), ("beach/astronaut.png", astronaut_bundle)):
        bundle = read_bundle(bundle_dir)
        masks[name] = []
        for obj in OBJECTS[name]:
            prediction = decoder.predict(bundle, points=obj["points"], box=obj["box"])
            masks[name].append(prediction.masks[prediction.best])
    return {
        "bundles": bundles,
        "file": root / "dataset.json",
        "document": document,
        "masks": masks,
        "models_dir": models_dir,
    }


def expected_document(dataset) -> dict:
    images = []
    for image in dataset["document"]["images"]:
        name = image["file_name"]
        objects = tuple(
            coco.AnnotatedObject(coco.parse_prompts({"objects": [obj]}).objects[0], mask)
            for obj, mask in zip(OBJECTS[name], dataset["masks"].get(name, []))
        )
        sha = image["sam2enc"]["sha256"]
        images.append(coco.AnnotatedImage(name, image["width"], image["height"], objects, sha))
    return coco.coco_dataset(images)


def run(dataset, *args: object, prompts: Path | None = None, out: Path | None = None) -> int:
    return main(
        [
            "decode",
            str(args[0] if args else dataset["bundles"]),
            "--prompts",
            str(prompts or dataset["file"]),
            "--coco",
            str(out),
            "--models-dir",
            str(dataset["models_dir"]),
            *map(str, args[1:]),
        ]
    )


# --- the document ------------------------------------------------------------------------------------
def test_a_photos_document_is_the_dataset_of_that_photo_alone():
    mask = np.zeros((3, 4), bool)
    mask[1, 1:3] = True
    objects = [coco.AnnotatedObject(coco.Prompts(points=((1, 1, 1),), label="cup"), mask)]
    document = coco.coco_document("a.png", 4, 3, objects)
    assert document == coco.coco_dataset([coco.AnnotatedImage("a.png", 4, 3, tuple(objects))])
    assert document["images"] == [{"id": 1, "file_name": "a.png", "width": 4, "height": 3}]
    fits = coco.AnnotatedObject(objects[0].prompts, np.zeros((3, 5), bool))
    with pytest.raises(ValueError, match=r"^b\.png: object 2's mask is \(4, 3\), the photo 5×3$"):
        coco.coco_dataset([coco.AnnotatedImage("b.png", 5, 3, (fits, objects[0]))])


# --- the CLI -----------------------------------------------------------------------------------------
def test_cli_remakes_every_mask_and_keeps_the_dataset(dataset, models_dir, tmp_path):
    out = tmp_path / "out" / "coco.json"
    result = cli(
        "decode", dataset["bundles"], "--prompts", dataset["file"], "--coco", out, "--models-dir", models_dir
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("image 1 coffee.png: 2 object(s) from ") and "img-0001 (by sha256)" in lines[0]
    assert (
        lines[1].startswith("image 2 beach/astronaut.png: 2 object(s) from ")
        and "astronaut (by name and size)" in lines[1]
    )
    assert lines[2] == "image 3 rocket.jpg: no objects"
    assert lines[3] == f"wrote 4 annotation(s) of 3 image(s) to {out}"

    document = json.loads(out.read_text())
    given = dataset["document"]["images"]
    assert document["images"] == [{**image, "id": i} for i, image in enumerate(given, start=1)]
    assert [c["name"] for c in document["categories"]] == ["cup", "saucer", "person"]
    assert [c["id"] for c in document["categories"]] == [1, 2, 3]
    anns = document["annotations"]
    assert [a["id"] for a in anns] == [1, 2, 3, 4]
    assert [a["image_id"] for a in anns] == [1, 1, 2, 2]
    assert [a["category_id"] for a in anns] == [1, 2, 3, 1]
    decoded = dataset["masks"]["coffee.png"] + dataset["masks"]["beach/astronaut.png"]
    assert any(0 < m.mean() < 1 for m in decoded), "the fixture should hold a partial mask"
    prompts = OBJECTS["coffee.png"] + OBJECTS["beach/astronaut.png"]
    for ann, mask, obj in zip(anns, decoded, prompts):
        assert (coco.rle_decode(ann["segmentation"]) == mask).all()  # the decoder's best mask, exactly
        assert ann["sam2enc"] == {"points": obj["points"], "box": obj["box"]}
        assert ann["bbox"] == coco.bbox(mask) and ann["area"] == int(mask.sum())
    assert document == expected_document(dataset)

    # Its own output as the prompts: the same document again.
    again = tmp_path / "again.json"
    assert run(dataset, prompts=out, out=again) == 0
    assert json.loads(again.read_text()) == document


def test_bundles_are_found_anywhere_under_the_folder(dataset):
    found = find_bundles(dataset["bundles"])
    assert [(b.path.relative_to(dataset["bundles"]).as_posix(), b.sha256 is None) for b in found] == [
        ("2024/img-0001", False),
        ("astronaut", True),
    ]


# --- pairing -----------------------------------------------------------------------------------------
S, T = "1" * 64, "2" * 64
PROMPT = (coco.Prompts(points=((1, 1, 1),)),)


def image(name: str, sha: str | None = S, size=(600, 400), objects=PROMPT) -> DatasetImage:
    return DatasetImage(name, *size, sha256=sha, objects=objects)


def bundle(path: str, sha: str | None = None, size=(600, 400)) -> FoundBundle:
    return FoundBundle(Path("b") / path, *size, sha256=sha)


def paired(images, bundles) -> list:
    pairings = pair(images, bundles, Path("b"), "d.json")
    return [(str(p.bundle.path), p.how) if p else None for p in pairings]


def test_pairing_by_sha256_first_then_by_name_and_size():
    bundles = [bundle("x/old", sha=S), bundle("a"), bundle("c", sha=T, size=(40, 30))]
    # a.jpg's bytes are in x/old's manifest: that one, though a/ has its name and size.
    assert paired([image("a.jpg")], bundles) == [("b/x/old", "sha256")]
    # No sha256 in the dataset: the folder of its name and size, whatever the bundle's sha256.
    assert paired([image("s/c.png", sha=None, size=(40, 30))], bundles) == [("b/c", "name and size")]
    # A sha256 no manifest has: a bundle without one, of its name and size.
    assert paired([image("deep/a.png", sha="3" * 64), image("n.jpg", objects=())], bundles) == [
        ("b/a", "name and size"),
        None,  # no objects: no bundle needed
    ]


@pytest.mark.parametrize(
    "images, bundles, message",
    [
        (
            [image("c.jpg", size=(40, 30))],
            [bundle("c", sha=T, size=(40, 30))],
            r"'c\.jpg' \(looked for a manifest with source\.sha256 111111111111…, then a bundle without "
            r"source\.sha256 in a folder named 'c' of a 40×30 photo; b/c is a photo with another sha256\)",
        ),
        (
            [image("a.jpg", sha=None), image("z.jpg")],
            [bundle("a", size=(400, 600))],
            r"d\.json: no bundle under b for 2 annotated image\(s\): 'a\.jpg' \(looked for no sha256 in the "
            r"dataset: a bundle folder named 'a' of a 600×400 photo; b/a holds a 400×600 one\); 'z\.jpg' .*"
            r"; nothing was written$",
        ),
        (
            [image("a.jpg")],
            [bundle("a", sha=S), bundle("copy/a", sha=S)],
            r"matches 2 bundles by sha256",
        ),
        ([image("a.jpg", sha=None)], [bundle("1/a"), bundle("2/a")], r"matches 2 bundles by name and size"),
        (
            [image("x/a.jpg", sha=None), image("y/a.jpg", sha=None)],
            [bundle("a")],
            r"images 'x/a\.jpg' and 'y/a\.jpg' both match the bundle b/a by name and size",
        ),
        ([image("a.jpg"), image("b.jpg", sha=None)], [bundle("b", sha=S)], r"is the photo of another image"),
        (
            [image("a.jpg", size=(601, 400))],
            [bundle("q", sha=S)],
            r"image 'a\.jpg' is 601×400, but its bundle b/q \(same sha256\) holds a 600×400 photo",
        ),
    ],
    ids=[
        "other-sha",
        "missing",
        "two-by-sha",
        "two-by-name",
        "one-bundle-two-images",
        "sha-and-name",
        "size",
    ],
)
def test_pairing_refuses_what_it_cannot_tell(images, bundles, message):
    with pytest.raises(Sam2EncError, match=message):
        pair(images, bundles, Path("b"), "d.json")


# --- bad input: one sentence, nothing written --------------------------------------------------------
def edited(dataset, change) -> dict:
    document = json.loads(json.dumps(dataset["document"]))
    change(document)
    return document


def annotate_rocket(d):
    d["annotations"].append({"id": 99, "image_id": 30, "category_id": 9, "sam2enc": {"points": [[5, 5, 1]]}})


BAD = [
    (
        annotate_rocket,
        r"no bundle under .* for 1 annotated image\(s\): 'rocket\.jpg' \(looked for a manifest",
    ),
    (
        lambda d: d["images"][0].update(width=601),
        r"image 'coffee\.png' is 601×400, but its bundle .*img-0001 \(same sha256\) holds a 600×400 photo",
    ),
    (lambda d: d["annotations"][2].pop("image_id"), r"annotation 3 \(id 9\) has no \"image_id\""),
    (
        lambda d: d["annotations"][1].update(image_id=99),
        r"annotation 2 \(id 8\) is of image_id 99, which is not among the images",
    ),
    (lambda d: d["images"][1].update(id=10), r"image 2 \('beach/astronaut\.png'\) has the id 10 of image 1"),
    (lambda d: d["images"][2].pop("file_name"), r"image 3 has no \"file_name\""),
    (lambda d: d["images"][0].update(sam2enc={"sha256": "AB"}), r"image 1 \('coffee\.png'\): \"sam2enc\" is"),
    (
        lambda d: d["annotations"][3]["sam2enc"].update(points=[[1, 1, 7]]),
        r"image 'coffee\.png', annotation 4 \(id 10\): a point's label is 1 \(object\) or 0",
    ),
    (
        lambda d: d["annotations"][0]["sam2enc"].update(points=[[9999, 1, 1]]),
        r"image 'beach/astronaut\.png', annotation 1 \(id 7\): \(9999, 1\) lies outside the 512×512 image",
    ),
    (lambda d: d["annotations"][0].pop("sam2enc"), r"annotation 1 \(id 7\) has no \"sam2enc\" prompts"),
    (lambda d: d.update(annotations=[]), r"has no annotations: there is nothing to decode"),
    (lambda d: d.pop("images"), r"is not a dataset COCO file"),
]


@pytest.mark.parametrize("change, message", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_datasets_are_one_sentence_and_leave_the_output_as_it_was(
    dataset, models_dir, tmp_path, capsys, change, message
):
    prompts = tmp_path / "dataset.json"
    prompts.write_text(json.dumps(edited(dataset, change)))
    out = tmp_path / "coco.json"
    out.write_text('{"earlier": true}\n')
    code = run(dataset, prompts=prompts, out=out)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith(f"error: {prompts}"), err
    assert re.search(message, err[0]), err
    assert out.read_text() == '{"earlier": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coco.json", "dataset.json"]


@pytest.mark.parametrize(
    "where, args, message",
    [
        ("bundles", ["--point", "1,1,1"], "--point/--box decode one bundle; "),
        ("bundles", ["--out", "m.png"], "--out writes one mask PNG"),
        ("empty", [], "holds no bundle: no folder under it has a manifest.json and an embedding.bin"),
        (
            "one bundle",
            [],
            "describes 3 images, a dataset: decode it with the folder of their bundles instead of one bundle",
        ),
    ],
)
def test_the_folder_and_the_dataset_go_together(dataset, models_dir, tmp_path, capsys, where, args, message):
    target = {
        "bundles": dataset["bundles"],
        "empty": tmp_path / "empty",
        "one bundle": dataset["bundles"] / "2024" / "img-0001",
    }[where]
    (tmp_path / "empty").mkdir()
    out = tmp_path / "coco.json"
    code = run(dataset, target, *args, out=out)
    assert code == 2 and message in capsys.readouterr().err
    assert not out.exists()


def test_a_folder_needs_a_dataset_file(dataset, models_dir, tmp_path, capsys):
    objects = tmp_path / "objects.json"
    objects.write_text(json.dumps({"objects": OBJECTS["coffee.png"]}))
    code = main(
        ["decode", str(dataset["bundles"]), "--prompts", str(objects), "--coco", str(tmp_path / "c.json")]
    )
    assert code == 2 and "is not a dataset COCO file" in capsys.readouterr().err
    code = main(["decode", str(dataset["bundles"]), "--coco", str(tmp_path / "c.json")])
    assert code == 2 and "give the dataset's COCO file, --prompts DATASET.json" in capsys.readouterr().err
    assert not (tmp_path / "c.json").exists()


def test_parse_keeps_the_images_order_and_each_ones_objects_in_file_order(dataset):
    images = parse_dataset(dataset["document"], "d.json")
    assert [i.file_name for i in images] == list(OBJECTS)
    assert [[o.label for o in i.objects] for i in images] == [["cup", "saucer"], ["person", "cup"], []]
    assert images[1].names == (
        "d.json: image 'beach/astronaut.png', annotation 1 (id 7)",
        "d.json: image 'beach/astronaut.png', annotation 3 (id 9)",
    )
