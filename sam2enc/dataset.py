"""A dataset's COCO file, remade from a folder of bundles: ``sam2enc decode BUNDLES_DIR --prompts
DATASET.json --coco OUT.json``.

The page's dataset mode opens a folder of photos and exports one COCO document for all of them
(``coco.coco_dataset``; lib/coco.js's ``cocoDataset``): an image per photo, ``file_name`` its path in
the folder and ``"sam2enc": {"sha256": hex}`` the sha256 of its bytes, each annotation's prompts under
``"sam2enc"``. Here that file is read back, each image with annotations is paired with a bundle found
anywhere under BUNDLES_DIR (a folder holding manifest.json and embedding.bin), every mask is decoded
again, and the same document comes out: same images (photos without objects too), categories in order
of first use, annotations 1..n in image order, then object order.

Pairing, per annotated image:

1. the bundle whose manifest's ``source.sha256`` is the image's ``sam2enc.sha256`` (the same bytes);
2. where the image or the bundle has no sha256 (older bundles have none), the bundle folder named as
   the file_name's stem (``beach/a.jpg`` → a folder ``a``) whose photo has the image's width and height.

Two candidate bundles for an image, or one bundle claimed by name by two images, is an error, and so is
an annotated image without a bundle (all of them are listed, with what was looked for). Everything is
read, paired and checked before the decoder starts, and OUT.json is written whole or not at all.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from .bundle import EMBEDDING_FILE, MANIFEST_FILE, SHA256, read_bundle
from .coco import (
    DEFAULT_LABEL,
    AnnotatedImage,
    Box,
    Point,
    Prompts,
    category_names,
    check_prompts,
    coco_dataset,
    decode_objects,
    is_int,
    is_size,
    load_json,
    parse_object,
    write_json,
)
from .errors import BundleError, PromptError, Sam2EncError


# --- the dataset file --------------------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetImage:
    """One image of a dataset file and its objects' prompts, in the file's order of annotations."""

    file_name: str
    width: int
    height: int
    sha256: str | None = None
    objects: tuple[Prompts, ...] = ()
    names: tuple[str, ...] = ()  # each object as errors name it: "FILE: image 'a.jpg', annotation 3 (id 7)"


def read_dataset(path: str | os.PathLike) -> tuple[DatasetImage, ...]:
    """Read a dataset's COCO file (the page's dataset export, or this command's output).

    Anything wrong is one sentence naming the file and, where there is one, the image and annotation.
    """
    return parse_dataset(load_json(path), source=str(path))


def parse_dataset(data: Any, source: str = "dataset") -> tuple[DatasetImage, ...]:
    """Validate a parsed dataset document (see ``read_dataset``): its images in order, with objects."""
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise PromptError(
            f'{source} is not a dataset COCO file (a document with "images" and "annotations", '
            "as the page's dataset export writes)"
        )
    images_in, annotations = data["images"], data["annotations"]
    if not isinstance(images_in, list) or not images_in:
        raise PromptError(f'{source}: "images" must be a non-empty list')
    images: list[dict[str, Any]] = []
    by_id: dict[int, int] = {}
    seen_names: dict[str, int] = {}
    for number, image in enumerate(images_in, start=1):
        images.append(_image(image, number, source))
        image_id, file_name = images[-1]["id"], images[-1]["file_name"]
        if image_id in by_id:
            raise PromptError(
                f"{source}: image {number} ({file_name!r}) has the id {image_id} "
                f"of image {by_id[image_id] + 1}"
            )
        if file_name in seen_names:
            raise PromptError(f"{source}: images {seen_names[file_name]} and {number} are both {file_name!r}")
        by_id[image_id] = number - 1
        seen_names[file_name] = number
    if not isinstance(annotations, list):
        raise PromptError(f'{source}: "annotations" must be a list')
    if not annotations:
        raise PromptError(f"{source} has no annotations: there is nothing to decode")
    names = category_names(data)
    for number, ann in enumerate(annotations, start=1):
        what = f"annotation {number}"
        if isinstance(ann, dict) and "id" in ann:
            what += f" (id {json.dumps(ann['id'])})"
        if not isinstance(ann, dict):
            raise PromptError(f"{source}: {what} must be an object with an image_id and sam2enc prompts")
        if "image_id" not in ann:
            raise PromptError(f'{source}: {what} has no "image_id": which image is it of?')
        image_id = ann["image_id"]
        if not is_int(image_id) or image_id not in by_id:
            raise PromptError(
                f"{source}: {what} is of image_id {json.dumps(image_id)}, which is not among the images"
            )
        image = images[by_id[image_id]]
        where = f"{source}: image {image['file_name']!r}, {what}"
        if not isinstance(ann.get("sam2enc"), dict):
            raise PromptError(
                f'{where} has no "sam2enc" prompts (only sam2enc\'s exports can be decoded again)'
            )
        label = names.get(ann.get("category_id"), DEFAULT_LABEL)
        image["objects"].append(parse_object({**ann["sam2enc"], "label": label}, where))
        image["names"].append(where)
    return tuple(
        DatasetImage(
            file_name=image["file_name"],
            width=image["width"],
            height=image["height"],
            sha256=image["sha256"],
            objects=tuple(image["objects"]),
            names=tuple(image["names"]),
        )
        for image in images
    )


def _image(image: Any, number: int, source: str) -> dict[str, Any]:
    if not isinstance(image, dict):
        raise PromptError(
            f'{source}: image {number} must be an object with "id", "file_name", "width", "height"'
        )
    file_name = image.get("file_name")
    if not isinstance(file_name, str) or not file_name.strip():
        raise PromptError(f'{source}: image {number} has no "file_name" (the photo\'s path in the dataset)')
    where = f"{source}: image {number} ({file_name!r})"
    if not is_int(image.get("id")):
        raise PromptError(f'{where} has no integer "id"')
    width, height = image.get("width"), image.get("height")
    if not is_size(width, height):
        raise PromptError(f"{where}: width and height must be positive integers")
    extra = image.get("sam2enc") or {}
    sha256 = extra.get("sha256") if isinstance(extra, dict) else None
    if not isinstance(extra, dict) or not (
        sha256 is None or (isinstance(sha256, str) and SHA256.fullmatch(sha256))
    ):
        raise PromptError(
            f'{where}: "sam2enc" is {{"sha256": the photo\'s sha256, 64 lowercase hex digits}}, '
            f"got {json.dumps(extra)}"
        )
    return {
        "id": image["id"],
        "file_name": file_name,
        "width": width,
        "height": height,
        "sha256": sha256,
        "objects": [],
        "names": [],
    }


# --- bundles under a folder, and which image each is -------------------------------------------------
@dataclass(frozen=True)
class FoundBundle:
    """A bundle folder under the dataset's folder, as its manifest describes it (read, not verified)."""

    path: Path
    width: int
    height: int
    sha256: str | None  # source.sha256; None for bundles older than it


def is_bundle_folder(path: str | os.PathLike) -> bool:
    """Whether ``decode PATH`` means one bundle (a file, or a folder holding a bundle's file) rather than
    a folder of bundles."""
    path = Path(path)
    return not path.is_dir() or (path / MANIFEST_FILE).exists() or (path / EMBEDDING_FILE).exists()


def find_bundles(root: str | os.PathLike) -> list[FoundBundle]:
    """Every folder under ``root`` holding manifest.json and embedding.bin, in sorted path order."""
    found = []
    for directory, subdirs, files in os.walk(root):
        subdirs.sort()
        if MANIFEST_FILE in files and EMBEDDING_FILE in files:
            found.append(_describe(Path(directory)))
            subdirs.clear()  # a bundle folder holds nothing else
    return found


def _describe(directory: Path) -> FoundBundle:
    try:
        manifest = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BundleError(f"{directory / MANIFEST_FILE} is not valid JSON") from None
    width = manifest.get("originalWidth") if isinstance(manifest, dict) else None
    height = manifest.get("originalHeight") if isinstance(manifest, dict) else None
    if not is_size(width, height):
        raise BundleError(f"{directory}: originalWidth/originalHeight must be positive integers")
    source = manifest.get("source")
    sha256 = source.get("sha256") if isinstance(source, dict) else None
    return FoundBundle(directory, width, height, sha256 if isinstance(sha256, str) else None)


@dataclass(frozen=True)
class Pairing:
    """An annotated image's bundle and how it was found ("sha256" or "name and size")."""

    bundle: FoundBundle
    how: str


def pair(
    images: Sequence[DatasetImage], bundles: Sequence[FoundBundle], root: Path, source: str
) -> list[Pairing | None]:
    """The bundle of each image with objects (None for an image without), or Sam2EncError naming every
    image without one, or the first image with two, or a bundle claimed by name by two images."""
    by_sha: dict[str, list[FoundBundle]] = {}
    for bundle in bundles:
        if bundle.sha256:
            by_sha.setdefault(bundle.sha256, []).append(bundle)
    pairings: list[Pairing | None] = []
    missing: list[str] = []
    for image in images:
        if not image.objects:
            pairings.append(None)
            continue
        stem = _stem(image.file_name)
        found, how = (by_sha.get(image.sha256, []) if image.sha256 else []), "sha256"
        if not found:
            how = "name and size"
            found = [
                b
                for b in bundles
                if (image.sha256 is None or b.sha256 is None)
                and b.path.name == stem
                and (b.width, b.height) == (image.width, image.height)
            ]
        if len(found) > 1:
            shown = ", ".join(str(b.path) for b in found)
            raise Sam2EncError(
                f"{source}: image {image.file_name!r} matches {len(found)} bundles by {how} ({shown}): "
                "keep one of them under the folder, or give the image its photo's sha256"
            )
        if not found:
            missing.append(_looked_for(image, stem, bundles))
            pairings.append(None)
            continue
        bundle = found[0]
        if (bundle.width, bundle.height) != (image.width, image.height):
            raise Sam2EncError(_size_mismatch(source, image, bundle.path, bundle.width, bundle.height))
        pairings.append(Pairing(bundle, how))
    if missing:
        raise Sam2EncError(
            f"{source}: no bundle under {root} for {len(missing)} annotated image(s): "
            + "; ".join(missing)
            + "; nothing was written"
        )
    by_name: dict[Path, str] = {}
    for image, pairing in zip(images, pairings):
        if pairing is None or pairing.how != "name and size":
            continue
        if pairing.bundle.path in by_name:
            raise Sam2EncError(
                f"{source}: images {by_name[pairing.bundle.path]!r} and {image.file_name!r} both match the "
                f"bundle {pairing.bundle.path} by name and size: give the images their photos' sha256"
            )
        by_name[pairing.bundle.path] = image.file_name
    claimed = {p.bundle.path for p in pairings if p is not None and p.how == "sha256"}
    for path, file_name in by_name.items():
        if path in claimed:
            raise Sam2EncError(
                f"{source}: the bundle {path} is the photo of another image by its sha256, and "
                f"{file_name!r}'s by name and size: give {file_name!r} its photo's sha256"
            )
    return pairings


def _size_mismatch(source: str, image: DatasetImage, path: Path, width: int, height: int) -> str:
    return (
        f"{source}: image {image.file_name!r} is {image.width}×{image.height}, but its bundle {path} "
        f"(same sha256) holds a {width}×{height} photo"
    )


def _stem(file_name: str) -> str:
    return PurePosixPath(file_name.replace("\\", "/")).stem


def _looked_for(image: DatasetImage, stem: str, bundles: Sequence[FoundBundle]) -> str:
    """How an image's bundle was looked for, and what the folders of its name hold instead."""
    size = f"{image.width}×{image.height}"
    if image.sha256:
        how = (
            f"a manifest with source.sha256 {image.sha256[:12]}…, then a bundle without source.sha256 "
            f"in a folder named {stem!r} of a {size} photo"
        )
    else:
        how = f"no sha256 in the dataset: a bundle folder named {stem!r} of a {size} photo"
    near = []
    for b in bundles:
        if b.path.name != stem:
            continue
        if (b.width, b.height) != (image.width, image.height):
            near.append(f"{b.path} holds a {b.width}×{b.height} one")
        elif image.sha256 and b.sha256:
            near.append(f"{b.path} is a photo with another sha256")
    return f"{image.file_name!r} (looked for {how}" + (f"; {', '.join(near)})" if near else ")")


# --- the command ---------------------------------------------------------------------------------------
def decode_dataset(
    root: str | os.PathLike,
    models_dir: str | os.PathLike,
    coco_out: str | os.PathLike | None,
    prompts_path: str | os.PathLike | None = None,
    points: Sequence[Point] = (),
    box: Box | None = None,
    png_out: str | os.PathLike | None = None,
) -> int:
    """``sam2enc decode BUNDLES_DIR --prompts DATASET.json --coco OUT.json``: every annotated image's
    masks remade on its bundle; read, paired and checked before the decoder starts, written whole."""
    from .decoder import Decoder

    root = Path(root)
    if points or box is not None:
        raise PromptError(
            f"--point/--box decode one bundle; {root} is a folder of bundles, "
            "decoded from --prompts DATASET.json"
        )
    if prompts_path is None:
        raise PromptError(
            f"{root} is a folder of bundles: give the dataset's COCO file, "
            "--prompts DATASET.json --coco OUT.json"
        )
    if coco_out is None:
        raise PromptError("a folder of bundles decodes a dataset into one COCO file: add --coco OUT.json")
    if png_out is not None:
        raise PromptError("--out writes one mask PNG; with --coco every mask goes into the COCO file")
    source = str(prompts_path)
    images = read_dataset(prompts_path)
    bundles = find_bundles(root)
    if not bundles:
        raise BundleError(
            f"{root} holds no bundle: no folder under it has a manifest.json and an embedding.bin"
        )
    pairings = pair(images, bundles, root, source)
    for image in images:
        check_prompts(image.width, image.height, image.objects, image.names)
    decoder = Decoder(models_dir)
    annotated = []
    count = 0
    for number, (image, pairing) in enumerate(zip(images, pairings), start=1):
        objects: tuple = ()
        if pairing is None:
            print(f"image {number} {image.file_name}: no objects")
        else:
            bundle = read_bundle(pairing.bundle.path)
            if (bundle.original_width, bundle.original_height) != (image.width, image.height):
                size = bundle.original_width, bundle.original_height
                raise Sam2EncError(_size_mismatch(source, image, pairing.bundle.path, *size))
            decoder.check(bundle)
            decoded, predictions = decode_objects(bundle, decoder, image.objects)
            objects = tuple(decoded)
            count += len(objects)
            cover = ", ".join(f"{p.masks[p.best].mean() * 100:.1f}%" for p in predictions)
            print(
                f"image {number} {image.file_name}: {len(objects)} object(s) from {pairing.bundle.path} "
                f"(by {pairing.how}); masks cover {cover}"
            )
        annotated.append(AnnotatedImage(image.file_name, image.width, image.height, objects, image.sha256))
    write_json(coco_dataset(annotated), coco_out)
    print(f"wrote {count} annotation(s) of {len(images)} image(s) to {coco_out}")
    return 0
