"""COCO annotation: masks as pycocotools RLE, one document per photo or dataset, prompts that remake it.

An annotation tool is only as useful as the files it writes, and COCO with RLE segmentation is what
training pipelines, pycocotools and SAM2's own demo backend read. The page (``lib/coco.js``) and
``sam2enc decode --prompts FILE --coco OUT.json`` build the same document from the same prompts, so an
export made by clicking can be checked, or remade with another model, from the command line. A dataset
(a folder of photos) is one document too, ``coco_dataset``, of which a photo's is the case of one image;
``sam2enc.dataset`` reads such a file and remakes it from a folder of bundles.

RLE follows pycocotools exactly (``pycocotools.mask.encode``):

- pixels are read **column-major** (down the first column, then the next), the mask's ``size`` is
  ``[height, width]``;
- ``counts`` alternate runs of 0 and 1 and always **start with a run of 0s**, which may be empty;
- the compressed string stores each count (from the fourth on, as the difference to the count two
  before) in 5-bit groups, least significant first, each group + 48 as one ASCII character, with 0x20
  meaning "more groups follow" and 0x10 the sign of the last group.

The encoder is plain NumPy (pycocotools is a test dependency, not a runtime one); when pycocotools is
importable, ``rle_encode`` lets it do the run-length pass, and the tests hold both to the same bytes.

Every object's prompts travel with its annotation under ``"sam2enc": {"points": [[x, y, label], ...],
"box": [x0, y0, x1, y1] | null}`` in pixels of the upright photo: the decoder needs nothing else.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import PromptError
from .publish import staging_file

log = logging.getLogger(__name__)

DEFAULT_LABEL = "object"

Point = tuple[float, float, int]
Box = tuple[float, float, float, float]


# --- RLE ---------------------------------------------------------------------------------------------
def rle_counts(mask: np.ndarray) -> list[int]:
    """Run lengths of a 2-D mask read column-major, starting with the (possibly empty) run of 0s."""
    flat = np.asarray(mask).astype(bool).ravel(order="F")
    if flat.size == 0:
        return [0]
    starts = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate(([0], starts, [flat.size])))
    if flat[0]:
        counts = np.concatenate(([0], counts))
    return [int(c) for c in counts]


def compress_counts(counts: Sequence[int]) -> str:
    """pycocotools' ``rleToString``: counts → the compact ASCII string of COCO's ``counts``."""
    out: list[str] = []
    for i, count in enumerate(counts):
        x = int(count) - int(counts[i - 2]) if i > 2 else int(count)
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic shift: negative differences keep their sign
            more = x != -1 if c & 0x10 else x != 0
            out.append(chr(c + 48 + (0x20 if more else 0)))
    return "".join(out)


def decompress_counts(text: str) -> list[int]:
    """pycocotools' ``rleFrString``: the ASCII string → counts."""
    counts: list[int] = []
    p = 0
    while p < len(text):
        x = k = 0
        more = True
        while more:
            if p >= len(text):
                raise ValueError("RLE counts string ends in the middle of a number")
            c = ord(text[p]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"RLE counts string holds {text[p]!r}, not a character pycocotools writes")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """A 2-D mask → ``{"size": [h, w], "counts": str}``, byte for byte what pycocotools writes."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a mask is 2-D (height, width), got shape {mask.shape}")
    height, width = mask.shape
    try:
        from pycocotools import mask as mask_utils
    except ImportError:
        counts = compress_counts(rle_counts(mask))
    else:
        encoded = mask_utils.encode(np.asfortranarray(mask.astype(bool), dtype=np.uint8))
        counts = encoded["counts"].decode("ascii")
    return {"size": [int(height), int(width)], "counts": counts}


def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    """``{"size": [h, w], "counts": str | list[int]}`` → bool (h, w) mask."""
    height, width = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, (str, bytes)):
        counts = decompress_counts(counts.decode("ascii") if isinstance(counts, bytes) else counts)
    counts = np.asarray(counts, dtype=np.int64)
    if (counts < 0).any() or counts.sum() != height * width:
        raise ValueError(
            f"RLE counts sum to {counts.sum()}, not the {width}×{height} photo's {height * width} pixels"
        )
    values = np.arange(counts.size) % 2 == 1
    flat = np.repeat(values, counts)
    return flat.reshape((height, width), order="F")


def bbox(mask: np.ndarray) -> list[int]:
    """COCO's ``[x, y, width, height]`` of the mask's pixels; ``[0, 0, 0, 0]`` when empty (as toBbox)."""
    mask = np.asarray(mask).astype(bool)
    cols = np.flatnonzero(mask.any(axis=0))
    rows = np.flatnonzero(mask.any(axis=1))
    if cols.size == 0:
        return [0, 0, 0, 0]
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]


def area(mask: np.ndarray) -> int:
    """The number of mask pixels (pycocotools' ``area`` of the RLE)."""
    return int(np.count_nonzero(mask))


# --- the document ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Prompts:
    """One object's prompts in pixels of the upright photo, and the label it is exported under."""

    points: tuple[Point, ...] = ()
    box: Box | None = None
    label: str = DEFAULT_LABEL


@dataclass(frozen=True)
class AnnotatedObject:
    """An object as exported: its prompts and the mask the decoder gave for them (bool, H×W)."""

    prompts: Prompts
    mask: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class AnnotatedImage:
    """A photo of a dataset as exported: where it lies, its upright size, its bytes' sha256 and objects.

    ``file_name`` is the photo's path relative to the folder the dataset was opened from; ``sha256``
    (hex, of the photo's bytes as uploaded: a bundle's ``source.sha256``) is left out when None."""

    file_name: str
    width: int
    height: int
    objects: tuple[AnnotatedObject, ...] = ()
    sha256: str | None = None


def coco_dataset(images: Sequence[AnnotatedImage]) -> dict:
    """A dataset's COCO document: image i per photo (in order, objects or not), a category per label in
    order of first use across the dataset, annotations 1..n in image order, then object order.

    An image with a ``sha256`` carries it as ``"sam2enc": {"sha256": hex}``; one without has no
    ``"sam2enc"`` key. lib/coco.js's ``cocoDataset`` builds the same document; the tests hold the two to
    the same bytes.
    """
    categories: dict[str, int] = {}
    entries, annotations = [], []
    for image_id, image in enumerate(images, start=1):
        width, height = image.width, image.height
        entry: dict[str, Any] = {
            "id": image_id,
            "file_name": image.file_name,
            "width": width,
            "height": height,
        }
        if image.sha256 is not None:
            entry["sam2enc"] = {"sha256": image.sha256}
        entries.append(entry)
        for number, obj in enumerate(image.objects, start=1):
            if obj.mask.shape != (height, width):
                raise ValueError(
                    f"{image.file_name}: object {number}'s mask is {obj.mask.shape[::-1]}, "
                    f"the photo {width}×{height}"
                )
            category = categories.setdefault(obj.prompts.label, len(categories) + 1)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category,
                    "segmentation": rle_encode(obj.mask),
                    "bbox": bbox(obj.mask),
                    "area": area(obj.mask),
                    "iscrowd": 0,
                    "sam2enc": {
                        "points": [[x, y, label] for x, y, label in obj.prompts.points],
                        "box": list(obj.prompts.box) if obj.prompts.box is not None else None,
                    },
                }
            )
    return {
        "images": entries,
        "categories": [{"id": i, "name": name, "supercategory": ""} for name, i in categories.items()],
        "annotations": annotations,
    }


def coco_document(file_name: str, width: int, height: int, objects: Sequence[AnnotatedObject]) -> dict:
    """One photo's COCO document: ``coco_dataset`` of that photo alone (image 1, no sha256).

    lib/coco.js's ``cocoDocument`` builds the same document; the tests hold the two to it.
    """
    return coco_dataset([AnnotatedImage(file_name, width, height, tuple(objects))])


# --- prompt files ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PromptFile:
    """What a prompts file asks for: objects in order, and the photo it was made for when it says so."""

    objects: tuple[Prompts, ...]
    file_name: str | None = None
    size: tuple[int, int] | None = None  # (width, height) of the photo, from a COCO file


def read_prompts(path: str | os.PathLike) -> PromptFile:
    """Read a COCO file written by the page or the CLI, or ``{"objects": [{points, box, label}]}``.

    Anything wrong is one sentence naming the file and, where there is one, the object.
    """
    return parse_prompts(load_json(path), source=str(path))


def load_json(path: str | os.PathLike) -> Any:
    """A prompts file's JSON; PromptError in one sentence when it is missing, not text or not JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PromptError(f"the prompts file {path} does not exist") from None
    except UnicodeDecodeError:
        raise PromptError(f"{path} is not a text file of JSON prompts") from None
    except json.JSONDecodeError as exc:
        raise PromptError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None


def parse_prompts(data: Any, source: str = "prompts") -> PromptFile:
    """Validate a parsed prompts document (see ``read_prompts``)."""
    if isinstance(data, dict) and "annotations" in data:
        return _from_coco(data, source)
    if isinstance(data, dict) and "objects" in data:
        objects = data["objects"]
        if not isinstance(objects, list) or not objects:
            raise PromptError(f'{source}: "objects" must be a non-empty list of {{points, box, label}}')
        file_name = data.get("file_name")
        if file_name is not None and not isinstance(file_name, str):
            raise PromptError(f'{source}: "file_name" must be a string')
        parsed = tuple(parse_object(obj, f"{source}: object {i}") for i, obj in enumerate(objects, start=1))
        return PromptFile(objects=parsed, file_name=file_name)
    raise PromptError(
        f'{source} is neither a COCO file written by sam2enc (with "annotations") '
        'nor {"objects": [{"points": ..., "box": ..., "label": ...}]}'
    )


def _from_coco(data: dict, source: str) -> PromptFile:
    images, annotations = data.get("images"), data.get("annotations")
    if isinstance(images, list) and len(images) > 1:
        raise PromptError(
            f"{source} describes {len(images)} images, a dataset: decode it with the folder of their bundles "
            f"instead of one bundle (sam2enc decode BUNDLES_DIR --prompts {source} --coco OUT.json)"
        )
    if not isinstance(images, list) or len(images) != 1 or not isinstance(images[0], dict):
        count = len(images) if isinstance(images, list) else "no"
        raise PromptError(f"{source}: a COCO prompts file describes exactly one image, this one has {count}")
    image = images[0]
    width, height = image.get("width"), image.get("height")
    if not is_size(width, height):
        raise PromptError(f"{source}: the image's width and height must be positive integers")
    if not isinstance(annotations, list) or not annotations:
        raise PromptError(f'{source}: "annotations" must be a non-empty list')
    names = category_names(data)
    objects = []
    for i, ann in enumerate(annotations, start=1):
        where = f"{source}: annotation {i}"
        if not isinstance(ann, dict) or not isinstance(ann.get("sam2enc"), dict):
            raise PromptError(
                f'{where} has no "sam2enc" prompts (only sam2enc\'s exports can be decoded again)'
            )
        label = names.get(ann.get("category_id"), DEFAULT_LABEL)
        objects.append(parse_object({**ann["sam2enc"], "label": label}, where))
    file_name = image.get("file_name") if isinstance(image.get("file_name"), str) else None
    return PromptFile(objects=tuple(objects), file_name=file_name, size=(width, height))


def category_names(data: dict) -> dict[Any, str]:
    """A COCO document's category ids → names (an annotation of an unnamed category is "object")."""
    names = {}
    for category in data.get("categories") or []:
        if isinstance(category, dict) and "id" in category and isinstance(category.get("name"), str):
            names[category["id"]] = category["name"]
    return names


def parse_object(obj: Any, where: str) -> Prompts:
    """One object's prompts from a prompts file, checked; errors name ``where``."""
    if not isinstance(obj, dict):
        raise PromptError(f'{where} must be an object with "points", "box" and "label"')
    points_in = obj.get("points") or []
    if not isinstance(points_in, list):
        raise PromptError(f'{where}: "points" must be a list of [x, y, label]')
    points = []
    for point in points_in:
        if not (isinstance(point, list) and len(point) == 3 and all(_is_number(v) for v in point)):
            raise PromptError(f"{where}: each point is [x, y, label] with numbers, got {json.dumps(point)}")
        if point[2] not in (0, 1):
            raise PromptError(f"{where}: a point's label is 1 (object) or 0 (background), got {point[2]}")
        points.append((point[0], point[1], int(point[2])))
    box = obj.get("box")
    if box is not None and not (isinstance(box, list) and len(box) == 4 and all(_is_number(v) for v in box)):
        raise PromptError(f'{where}: "box" is [x0, y0, x1, y1] or null, got {json.dumps(box)}')
    label = obj.get("label", DEFAULT_LABEL)
    if not isinstance(label, str) or not label.strip():
        raise PromptError(f'{where}: "label" must be a non-empty string')
    if not points and box is None:
        raise PromptError(f"{where} has neither a point nor a box")
    return Prompts(points=tuple(points), box=tuple(box) if box is not None else None, label=label)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_int(value: Any) -> bool:
    """A JSON integer (not a bool, not 3.0)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_size(width: Any, height: Any) -> bool:
    """Whether a width and height read from JSON are a photo's: positive integers."""
    return is_int(width) and is_int(height) and width > 0 and height > 0


# --- decode a prompts file into a COCO file ----------------------------------------------------------
def annotate(bundle: Any, decoder: Any, prompts: PromptFile, file_name: str) -> tuple[dict, list[Any]]:
    """Decode every object's prompts on the bundle (all checked first) → (document, predictions)."""
    width, height = bundle.original_width, bundle.original_height
    if prompts.size is not None and prompts.size != (width, height):
        raise PromptError(
            f"the prompts were made on a {prompts.size[0]}×{prompts.size[1]} photo, "
            f"the bundle's photo is {width}×{height}"
        )
    check_prompts(width, height, prompts.objects)
    decoder.check(bundle)
    objects, predictions = decode_objects(bundle, decoder, prompts.objects)
    return coco_document(prompts.file_name or file_name, width, height, objects), predictions


def check_prompts(
    width: int, height: int, objects: Sequence[Prompts], names: Sequence[str] | None = None
) -> None:
    """Every object's prompts fit a width×height photo; else PromptError naming the object ("object N",
    or its entry of ``names``)."""
    from .decoder import prompt_arrays

    for number, obj in enumerate(objects, start=1):
        try:
            prompt_arrays(width, height, obj.points, obj.box)
        except PromptError as exc:
            raise PromptError(f"{names[number - 1] if names else f'object {number}'}: {exc}") from None


def decode_objects(bundle: Any, decoder: Any, objects: Sequence[Prompts]) -> tuple[list, list[Any]]:
    """Each object's best mask on the bundle → (annotated objects, predictions), in order."""
    annotated, predictions = [], []
    for obj in objects:
        prediction = decoder.predict(bundle, points=obj.points, box=obj.box)
        predictions.append(prediction)
        annotated.append(AnnotatedObject(prompts=obj, mask=prediction.masks[prediction.best]))
    return annotated, predictions


def write_json(document: dict, out: str | os.PathLike) -> Path:
    """Write a JSON document whole or not at all (a temporary sibling, renamed into place)."""
    out = Path(out)
    fd, staging = staging_file(out)  # the mode open() would give: readable by others under umask 022
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle)
            handle.write("\n")
        os.replace(staging, out)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return out


def decode_to_coco(
    bundle_path: str | os.PathLike,
    models_dir: str | os.PathLike,
    coco_out: str | os.PathLike | None,
    prompts_path: str | os.PathLike | None = None,
    points: Sequence[Point] = (),
    box: Box | None = None,
    png_out: str | os.PathLike | None = None,
) -> int:
    """``sam2enc decode BUNDLE --prompts FILE --coco OUT.json`` (or ``--point``/``--box`` as one object).

    Everything is read, checked and decoded before OUT.json is written, in one piece.
    """
    from .bundle import read_bundle
    from .decoder import Decoder

    if coco_out is None:
        raise PromptError("--prompts decodes several objects into one COCO file: add --coco OUT.json")
    if png_out is not None:
        raise PromptError("--out writes one mask PNG; with --coco every mask goes into the COCO file")
    if prompts_path is not None and (points or box is not None):
        raise PromptError("give the objects either in --prompts FILE or as --point/--box, not both")
    if prompts_path is not None:
        prompts = read_prompts(prompts_path)
    elif points or box is not None:
        prompts = PromptFile(objects=(Prompts(points=tuple(points), box=box),))
    else:
        raise PromptError("give --prompts FILE, or --point/--box for a single object")
    bundle = read_bundle(bundle_path)
    decoder = Decoder(models_dir)
    default_name = Path(bundle_path).name if Path(bundle_path).is_dir() else Path(bundle_path).parent.name
    document, predictions = annotate(bundle, decoder, prompts, default_name)
    for number, (obj, prediction) in enumerate(zip(prompts.objects, predictions), start=1):
        scores = ", ".join(f"{s:.3f}" for s in prediction.scores)
        coverage = prediction.masks[prediction.best].mean() * 100
        best = prediction.best
        print(f"object {number} ({obj.label}): IoU predictions [{scores}]; mask {best}, {coverage:.1f}%")
    write_json(document, coco_out)
    print(f"wrote {len(predictions)} annotation(s) to {coco_out}")
    return 0
