"""The core promise: a bundle holds what SAM2ImagePredictor.set_image computes, and its masks match.

Reference: SAM2's own predictor on the same checkpoint, fed the upright RGB image (Pillow decode,
EXIF applied) exactly as its documentation asks. Ours: the file path through load_image →
preprocess → encoder.onnx → float16 bundle → decoder.onnx.
"""

from __future__ import annotations

import numpy as np
import pytest

from sam2enc.bundle import TENSORS, read_bundle
from sam2enc.export import relative_l2
from sam2enc.pipeline import encode_to_dir
from tests.conftest import upright_rgb
from tests.helpers import iou

FEATURE_TOLERANCE = 1e-3
LOGIT_TOLERANCE = 5e-3
MIN_IOU = 0.995
PHOTOS = ["astronaut", "coffee", "rocket", "chelsea_exif6", "coffee_12mp", "gravel_12mp"]
# host: Pillow on the CPU (served there); graph: preprocess.onnx (served on CUDA), here on the CPU provider.
PREPROCESSING = ["host", "graph"]


def prompts(width: int, height: int) -> dict[str, dict]:
    return {
        "click": {"points": [(0.45 * width, 0.4 * height, 1)]},
        "two clicks and a negative": {
            "points": [
                (0.45 * width, 0.4 * height, 1),
                (0.6 * width, 0.55 * height, 1),
                (0.1 * width, 0.9 * height, 0),
            ]
        },
        "box": {"box": (0.2 * width, 0.15 * height, 0.8 * width, 0.9 * height)},
        "box and click": {
            "box": (0.2 * width, 0.15 * height, 0.8 * width, 0.9 * height),
            "points": [(0.5 * width, 0.5 * height, 1)],
        },
    }


def reference_predict(predictor, prompt: dict):
    points = prompt.get("points")
    coords = np.array([p[:2] for p in points], dtype=np.float32) if points else None
    labels = np.array([p[2] for p in points], dtype=np.int64) if points else None
    box = np.array(prompt["box"], dtype=np.float32) if "box" in prompt else None
    logits, scores, low_res = predictor.predict(
        point_coords=coords, point_labels=labels, box=box, multimask_output=True, return_logits=True
    )
    return logits, scores, low_res


@pytest.fixture(scope="module")
def encoders(encoder, models_dir):
    from sam2enc.encoder import Encoder

    return {"host": encoder, "graph": Encoder(models_dir, device="cpu", preprocessing="graph")}


@pytest.mark.parametrize("preprocessing", PREPROCESSING)
@pytest.mark.parametrize("name", PHOTOS)
def test_bundle_and_masks_match_sam2_predictor(
    name, preprocessing, photos, predictor, encoders, decoder, tmp_path, report
):
    encoder = encoders[preprocessing]
    assert encoder.preprocessing == preprocessing
    path = photos[name]
    rgb = upright_rgb(path)
    predictor.set_image(rgb)
    expected = {
        "image_embed": predictor._features["image_embed"].numpy(),
        "high_res_feats_0": predictor._features["high_res_feats"][0].numpy(),
        "high_res_feats_1": predictor._features["high_res_feats"][1].numpy(),
    }

    bundle = read_bundle(encode_to_dir(path, encoder, tmp_path / "bundle"))

    assert (bundle.original_height, bundle.original_width) == rgb.shape[:2]
    row: dict = {"photo": name, "preprocessing": preprocessing, "size": f"{rgb.shape[1]}x{rgb.shape[0]}"}
    for tensor in TENSORS:
        error = relative_l2(bundle.features[tensor], expected[tensor])
        row[tensor] = f"{error:.2e}"
        assert error < FEATURE_TOLERANCE, f"{tensor}: relative L2 {error:.2e}"

    for label, prompt in prompts(bundle.original_width, bundle.original_height).items():
        ref_logits, ref_scores, ref_low_res = reference_predict(predictor, prompt)
        ours = decoder.predict(bundle, **prompt)
        logit_error = relative_l2(ours.low_res_logits, ref_low_res)
        ious = [iou(ours.masks[i], ref_logits[i] > 0) for i in range(3)]
        row[f"{label}: logits"] = f"{logit_error:.2e}"
        row[f"{label}: min IoU"] = f"{min(ious):.5f}"
        assert logit_error < LOGIT_TOLERANCE, f"{label}: logits relative L2 {logit_error:.2e}"
        assert min(ious) >= MIN_IOU, f"{label}: mask IoU {ious}"
        assert np.allclose(ours.scores, ref_scores, atol=2e-3), f"{label}: {ours.scores} vs {ref_scores}"
        # the masks are not trivially empty or full, so IoU says something
        assert 0.01 < (ref_logits[0] > 0).mean() < 0.99
    report(row)


def test_previous_mask_input_matches_predictor(photos, predictor, encoder, decoder, tmp_path):
    """A second click refined with the first click's low-res logits, as interactive tools do."""
    path = photos["astronaut"]
    predictor.set_image(upright_rgb(path))
    bundle = read_bundle(encode_to_dir(path, encoder, tmp_path / "bundle"))
    first = decoder.predict(bundle, points=[(200, 150, 1)])
    previous = first.low_res_logits[first.best][None]
    ours = decoder.predict(bundle, points=[(200, 150, 1), (300, 260, 1)], mask_input=previous)
    ref_logits, _, ref_low_res = predictor.predict(
        point_coords=np.array([[200, 150], [300, 260]], dtype=np.float32),
        point_labels=np.array([1, 1]),
        mask_input=previous,
        multimask_output=True,
        return_logits=True,
    )
    assert relative_l2(ours.low_res_logits, ref_low_res) < LOGIT_TOLERANCE
    assert min(iou(ours.masks[i], ref_logits[i] > 0) for i in range(3)) >= MIN_IOU


def test_uint8_resize_would_break_parity(photos, predictor, encoder):
    """Guard for the preprocessing choice: resizing pixels as uint8 is measurably worse than floats."""
    from PIL import Image

    from sam2enc.preprocess import MEAN, STD, preprocess

    rgb = upright_rgb(photos["coffee"])
    predictor.set_image(rgb)
    expected = predictor._features["high_res_feats"][0].numpy()
    ours = encoder.run(preprocess(rgb))["high_res_feats_0"]
    resized = np.asarray(Image.fromarray(rgb).resize((1024, 1024), Image.BILINEAR), np.float32) / 255
    shortcut = ((resized - MEAN) / STD).transpose(2, 0, 1)[None].astype(np.float32)
    worse = encoder.run(np.ascontiguousarray(shortcut))["high_res_feats_0"]
    assert relative_l2(ours, expected) * 3 < relative_l2(worse, expected)
