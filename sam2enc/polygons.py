"""COCO polygons from RLE masks: ``sam2enc polygons IN.json --out OUT.json``.

The page and ``sam2enc decode --coco`` write RLE, which keeps every pixel; some training pipelines read
only polygons (the YOLO segmentation converters, for one, take ``segmentation`` as a list of
``[x1, y1, x2, y2, ...]``). This module turns a COCO document's RLE annotations into polygons:

- each region's **outer boundary**, walked along pixel edges, so that before simplification the polygon
  covers exactly the region's pixels (pycocotools rasterises a polygon through pixel corners
  ``(x, y)`` .. ``(x + 1, y + 1)`` to pixel ``(x, y)``, which the tests check);
- regions touching only at a corner are separate polygons (the walk turns right at such a corner);
- **holes are filled**: pycocotools unions an annotation's polygons, so a polygon cannot cut one out
  (RLE keeps them — the reason the page and the CLI write RLE);
- simplified by Douglas–Peucker within ``tolerance`` pixels (default 1: the one-pixel stairs of a curved
  edge go, the outline stays within a pixel of the mask's); a region that simplification would reduce
  to a line (one pixel wide, or a single pixel) keeps its exact outline, so no region is lost.

``bbox``, ``area`` (the mask's pixels) and the ``sam2enc`` prompts are kept. An empty mask, or a crowd
annotation (``iscrowd: 1``, RLE by COCO's own convention), keeps its RLE.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .coco import rle_decode, write_json
from .errors import Sam2EncError

DEFAULT_TOLERANCE = 1.0
# (dx, dy) of a step, turned right in image coordinates (y down): a walk keeps its region on its right.
_RIGHT = {(1, 0): (0, 1), (0, 1): (-1, 0), (-1, 0): (0, -1), (0, -1): (1, 0)}


def mask_polygons(mask: np.ndarray, tolerance: float = DEFAULT_TOLERANCE) -> list[list[int]]:
    """A 2-D mask → one flat ``[x1, y1, x2, y2, ...]`` polygon per region (outer boundaries, largest
    first), vertices on pixel corners (Douglas–Peucker keeps a subset of them: whole numbers),
    simplified within ``tolerance`` pixels (0: the exact outline)."""
    loops = [(_signed_area(loop), loop) for loop in _boundary_loops(np.asarray(mask, dtype=bool))]
    outlines = sorted((pair for pair in loops if pair[0] > 0), key=lambda pair: pair[0], reverse=True)
    polygons = []
    for _, loop in outlines:
        points = _simplify(loop, tolerance) if tolerance > 0 else loop
        if len(points) < 3:  # a region a pixel wide or a single pixel lies within the tolerance of a
            points = loop  # line: simplified, it would vanish while bbox and area still count it
        polygons.append([int(v) for point in points for v in point])  # corners: whole pixels
    return polygons


def _boundary_loops(mask: np.ndarray) -> list[np.ndarray]:
    """Every boundary of the mask as a closed walk of pixel corners, its vertices where it turns.

    Directed edges keep the foreground on their right: outer boundaries come out clockwise on screen
    (positive shoelace area with y down), holes the other way round."""
    height, width = mask.shape
    padded = np.zeros((height + 2, width + 2), dtype=bool)
    padded[1:-1, 1:-1] = mask
    inside = padded[1:-1, 1:-1]
    edges = []  # (x0, y0, dx, dy) for each unit edge
    ys, xs = np.nonzero(inside & ~padded[:-2, 1:-1])  # top edges, walked right
    edges.append((xs, ys, 1, 0))
    ys, xs = np.nonzero(inside & ~padded[1:-1, 2:])  # right edges, walked down
    edges.append((xs + 1, ys, 0, 1))
    ys, xs = np.nonzero(inside & ~padded[2:, 1:-1])  # bottom edges, walked left
    edges.append((xs + 1, ys + 1, -1, 0))
    ys, xs = np.nonzero(inside & ~padded[1:-1, :-2])  # left edges, walked up
    edges.append((xs, ys + 1, 0, -1))
    outgoing: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for x0, y0, dx, dy in edges:
        for x, y in zip(x0.tolist(), y0.tolist()):
            outgoing.setdefault((x, y), []).append((dx, dy))
    loops = []
    for start in list(outgoing):  # not next(iter(...)) of a shrinking dict: quadratic on many regions
        while start in outgoing:  # a corner two regions share starts two walks
            loops.append(_walk(start, outgoing))
    return loops


def _walk(start: tuple[int, int], outgoing: dict) -> np.ndarray:
    """Follow unused edges from ``start`` until it is reached again, removing them; the corners where
    the walk turns. (A boundary that touches itself at a corner may come back to ``start`` early: each
    part is then a closed loop of its own, an outline or a hole's.)"""
    x, y = start
    direction = None
    corners = []
    while direction is None or (x, y) != start:
        choices = outgoing[(x, y)]
        step = choices[0]
        if len(choices) > 1 and direction is not None and _RIGHT[direction] in choices:
            step = _RIGHT[direction]  # two regions meet at this corner: keep to ours
        choices.remove(step)
        if not choices:
            del outgoing[(x, y)]
        if step != direction:
            corners.append((x, y))
        direction = step
        x, y = x + step[0], y + step[1]
    return np.asarray(corners, dtype=np.int64)


def _signed_area(loop: np.ndarray) -> float:
    x, y = loop[:, 0].astype(np.float64), loop[:, 1].astype(np.float64)
    return float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) / 2


def _simplify(loop: np.ndarray, tolerance: float) -> np.ndarray:
    """Douglas–Peucker on a closed loop: split at the vertex farthest from the first, simplify both."""
    points = loop.astype(np.float64)
    far = int(np.argmax(((points - points[0]) ** 2).sum(axis=1)))
    first = _douglas_peucker(points[: far + 1], tolerance)
    second = _douglas_peucker(np.vstack([points[far:], points[:1]]), tolerance)
    return np.vstack([first[:-1], second[:-1]])


def _douglas_peucker(points: np.ndarray, tolerance: float) -> np.ndarray:
    """The open polyline's vertices kept: first, last, and recursively the farthest beyond tolerance."""
    keep = np.zeros(len(points), dtype=bool)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:
        lo, hi = stack.pop()
        if hi - lo < 2:
            continue
        a, b = points[lo], points[hi]
        segment = b - a
        inner = points[lo + 1 : hi] - a
        length = np.hypot(*segment)
        if length == 0:
            distances = np.hypot(inner[:, 0], inner[:, 1])
        else:
            distances = np.abs(segment[0] * inner[:, 1] - segment[1] * inner[:, 0]) / length
        worst = int(np.argmax(distances))
        if distances[worst] > tolerance:
            keep[lo + 1 + worst] = True
            stack += [(lo, lo + 1 + worst), (lo + 1 + worst, hi)]
    return points[keep]


def document_polygons(document: dict, tolerance: float = DEFAULT_TOLERANCE) -> tuple[dict, int]:
    """A COCO document with each non-crowd RLE annotation's segmentation as polygons; also how many
    annotations kept their RLE (empty masks). The input is not modified."""
    converted = json.loads(json.dumps(document))
    kept = 0
    for number, annotation in enumerate(converted.get("annotations", []), start=1):
        segmentation = annotation.get("segmentation")
        if not isinstance(segmentation, dict) or annotation.get("iscrowd", 0):
            continue
        try:
            mask = rle_decode(segmentation)
        except (KeyError, TypeError, ValueError) as exc:
            raise Sam2EncError(f"annotation {number}: its RLE segmentation cannot be read ({exc})") from None
        polygons = mask_polygons(mask, tolerance)
        if polygons:
            annotation["segmentation"] = polygons
        else:
            kept += 1
    return converted, kept


def convert_file(
    source: str | os.PathLike, out: str | os.PathLike, tolerance: float = DEFAULT_TOLERANCE
) -> Path:
    """``sam2enc polygons``: read a COCO JSON, write it with polygon segmentations (whole or not at all)."""
    if tolerance < 0:
        raise Sam2EncError(f"--tolerance is a distance in pixels, 0 or more, got {tolerance:g}")
    try:
        document: Any = json.loads(Path(source).read_text())
    except FileNotFoundError:
        raise Sam2EncError(f"{source} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Sam2EncError(f"{source} is not a JSON file ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("annotations"), list):
        raise Sam2EncError(f"{source} is not a COCO document: it has no 'annotations' list")
    converted, kept = document_polygons(document, tolerance)
    path = write_json(converted, out)
    count = len(converted["annotations"])
    note = f" ({kept} empty kept as RLE)" if kept else ""
    print(f"{count} annotations as polygons{note} -> {path}")
    return path
