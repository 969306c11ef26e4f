"""The local decoder harness: a bundle and prompts in image pixels → masks at the original size.

It mirrors ``SAM2ImagePredictor.predict(multimask_output=True)``: clicks are scaled by 1024/width and
1024/height, a box becomes two corner points with labels 2 and 3 placed before the clicks, the graph
appends the padding point itself, and the 256×256 logits are upsampled bilinearly
(align_corners=False) to the original size and thresholded at 0 — the logits, never the binary mask.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bundle import INPUT_SIZE, Bundle
from .encoder import create_session
from .errors import ModelMismatchError, PromptError
from .modeldir import DECODER_FILE, DECODER_HIRES_FILE, ModelInfo, model_mismatch, same_model

LOW_RES = 256
MASK_THRESHOLD = 0.0


@dataclass(frozen=True)
class Prediction:
    masks: np.ndarray  # (3, H, W) bool at the original size
    scores: np.ndarray  # (3,) predicted IoU
    low_res_logits: np.ndarray  # (3, 256, 256), clamped to ±32: feed one back as mask_input

    @property
    def best(self) -> int:
        return int(np.argmax(self.scores))


def prompt_arrays(
    width: int,
    height: int,
    points: Sequence[tuple[float, float, int]] = (),
    box: tuple[float, float, float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Prompts in pixels of the upright image → (1,N,2) model-space coords and (1,N) labels."""
    coords: list[tuple[float, float]] = []
    labels: list[float] = []
    if box is not None:
        x0, y0, x1, y1 = (float(v) for v in box)
        if not (x0 < x1 and y0 < y1):
            raise PromptError(f"a box needs x0 < x1 and y0 < y1, got {box}")
        coords += [(x0, y0), (x1, y1)]
        labels += [2.0, 3.0]
    for point in points:
        x, y, label = point
        if int(label) not in (0, 1) or label != int(label):
            raise PromptError(f"a click's label is 1 (foreground) or 0 (background), got {label}")
        coords.append((float(x), float(y)))
        labels.append(float(label))
    if not coords:
        raise PromptError("give at least one click or a box")
    for x, y in coords:
        if not (0 <= x <= width and 0 <= y <= height):
            raise PromptError(f"({x:g}, {y:g}) lies outside the {width}×{height} image")
    scale = np.array([INPUT_SIZE / width, INPUT_SIZE / height], dtype=np.float32)
    model_coords = np.asarray(coords, dtype=np.float32) * scale
    return model_coords[None], np.asarray(labels, dtype=np.float32)[None]


def upsample_logits(logits: np.ndarray, height: int, width: int) -> np.ndarray:
    """(C, h, w) → (C, height, width), bilinear with align_corners=False, like F.interpolate."""
    rows = _interpolation_matrix(height, logits.shape[-2])
    cols = _interpolation_matrix(width, logits.shape[-1])
    return np.einsum("oh,chw,pw->cop", rows, logits.astype(np.float32), cols, optimize=True)


def _interpolation_matrix(out_size: int, in_size: int) -> np.ndarray:
    # float32 source positions, as torch computes them, so the two agree to rounding
    scale = np.float32(in_size) / np.float32(out_size)
    src = np.arange(out_size, dtype=np.float32) + np.float32(0.5)
    src = np.maximum(scale * src - np.float32(0.5), np.float32(0.0))
    lo = np.minimum(src.astype(np.int64), in_size - 1)
    hi = np.minimum(lo + 1, in_size - 1)
    frac = np.clip(src - lo.astype(np.float32), 0, 1)
    matrix = np.zeros((out_size, in_size), dtype=np.float32)
    rows = np.arange(out_size)
    np.add.at(matrix, (rows, lo), 1.0 - frac)
    np.add.at(matrix, (rows, hi), frac)
    return matrix


class Decoder:
    """``decoder.onnx`` (or ``decoder_hires.onnx``) in ONNX Runtime, prompts in image pixels.

    It reads model.json beside the graph and refuses a bundle encoded by another model
    (``ModelMismatchError``), since every SAM2.1 size fits the same decoder inputs and would decode wrong.
    """

    def __init__(self, models_dir: str | os.PathLike, hires: bool = False, device: str = "cpu") -> None:
        filename = DECODER_HIRES_FILE if hires else DECODER_FILE
        self.info = ModelInfo.read(models_dir)
        self.session = create_session(Path(models_dir) / filename, device)
        self._features: tuple[Bundle, dict[str, np.ndarray]] | None = None

    def logits(
        self,
        bundle: Bundle,
        point_coords: np.ndarray,
        point_labels: np.ndarray,
        mask_input: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Run the graph on model-space prompts: (1,3,S,S) logits and (1,3) IoU predictions."""
        self.check(bundle)
        has_mask = mask_input is not None
        if mask_input is None:
            mask_input = np.zeros((1, 1, LOW_RES, LOW_RES), dtype=np.float32)
        feeds = {
            **self._features_f32(bundle),
            "point_coords": point_coords.astype(np.float32),
            "point_labels": point_labels.astype(np.float32),
            "mask_input": np.asarray(mask_input, np.float32).reshape(1, 1, LOW_RES, LOW_RES),
            "has_mask_input": np.array([float(has_mask)], dtype=np.float32),
        }
        masks, iou = self.session.run(["masks", "iou_predictions"], feeds)
        return masks, iou

    def predict(
        self,
        bundle: Bundle,
        points: Sequence[tuple[float, float, int]] = (),
        box: tuple[float, float, float, float] | None = None,
        mask_input: np.ndarray | None = None,
    ) -> Prediction:
        """Prompts in pixels of the upright image → masks at the original size."""
        width, height = bundle.original_width, bundle.original_height
        coords, labels = prompt_arrays(width, height, points, box)
        logits, iou = self.logits(bundle, coords, labels, mask_input)
        full = upsample_logits(logits[0], height, width)
        return Prediction(
            masks=full > MASK_THRESHOLD,
            scores=iou[0],
            low_res_logits=np.clip(logits[0], -32.0, 32.0) if logits.shape[-1] == LOW_RES else logits[0],
        )

    def check(self, bundle: Bundle) -> None:
        """Refuse a bundle that another model encoded, in one sentence naming both models."""
        if not same_model(bundle.model, self.info.identity):
            raise ModelMismatchError(model_mismatch(bundle.model, self.info.identity))

    def _features_f32(self, bundle: Bundle) -> dict[str, np.ndarray]:
        if self._features is None or self._features[0] is not bundle:
            self._features = (bundle, bundle.features_f32())
        return self._features[1]
