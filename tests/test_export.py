"""The exported graphs: names, dtypes and dynamic prompt length as model.json and the README state."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from sam2enc.decoder import prompt_arrays


def test_model_json_describes_the_graphs(models_dir):
    info = json.loads((models_dir / "model.json").read_text())
    assert info["model"] == "sam2.1_hiera_tiny"
    assert len(info["checkpointSha256"]) == 64
    assert info["opset"] == 17 and info["sam2Version"] == "1.1.0"
    encoder = info["graphs"]["encoder.onnx"]
    assert encoder["inputs"] == {"image": {"shape": [1, 3, 1024, 1024], "dtype": "float32"}}
    assert encoder["outputs"]["image_embed"] == {"shape": [1, 256, 64, 64], "dtype": "float16"}
    assert encoder["outputs"]["high_res_feats_0"]["shape"] == [1, 32, 256, 256]
    assert encoder["outputs"]["high_res_feats_1"]["shape"] == [1, 64, 128, 128]
    decoder = info["graphs"]["decoder.onnx"]
    assert decoder["inputs"]["point_coords"]["shape"] == [1, "num_points", 2]
    assert decoder["outputs"]["masks"]["shape"] == [1, 3, 256, 256]
    assert info["graphs"]["decoder_hires.onnx"]["outputs"]["masks"]["shape"] == [1, 3, 512, 512]
    assert max(info["verificationMaxRelativeL2"].values()) < 1e-3


@pytest.mark.parametrize("count", [1, 2, 7])
def test_decoder_takes_any_number_of_points(models_dir, count):
    session = ort.InferenceSession(str(models_dir / "decoder.onnx"), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(count)
    feeds = {
        "image_embed": rng.standard_normal((1, 256, 64, 64), np.float32),
        "high_res_feats_0": rng.standard_normal((1, 32, 256, 256), np.float32),
        "high_res_feats_1": rng.standard_normal((1, 64, 128, 128), np.float32),
        "point_coords": rng.uniform(0, 1024, (1, count, 2)).astype(np.float32),
        "point_labels": np.ones((1, count), np.float32),
        "mask_input": np.zeros((1, 1, 256, 256), np.float32),
        "has_mask_input": np.zeros(1, np.float32),
    }
    masks, iou = session.run(["masks", "iou_predictions"], feeds)
    assert masks.shape == (1, 3, 256, 256) and iou.shape == (1, 3)
    assert np.isfinite(masks).all()


def test_hires_decoder_is_the_upsampled_low_res_one(models_dir):
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(1)
    feeds = {
        "image_embed": rng.standard_normal((1, 256, 64, 64), np.float32),
        "high_res_feats_0": rng.standard_normal((1, 32, 256, 256), np.float32),
        "high_res_feats_1": rng.standard_normal((1, 64, 128, 128), np.float32),
        "point_coords": np.array([[[500.0, 400.0]]], np.float32),
        "point_labels": np.ones((1, 1), np.float32),
        "mask_input": np.zeros((1, 1, 256, 256), np.float32),
        "has_mask_input": np.zeros(1, np.float32),
    }
    low = ort.InferenceSession(str(models_dir / "decoder.onnx"), providers=["CPUExecutionProvider"])
    high = ort.InferenceSession(str(models_dir / "decoder_hires.onnx"), providers=["CPUExecutionProvider"])
    low_masks, low_iou = low.run(None, feeds)
    high_masks, high_iou = high.run(None, feeds)
    expected = F.interpolate(
        torch.from_numpy(low_masks), size=(512, 512), mode="bilinear", align_corners=False
    )
    assert np.allclose(high_masks, expected.numpy(), atol=1e-4)
    assert np.allclose(high_iou, low_iou)


def test_clicks_map_to_model_space_without_keeping_aspect_ratio():
    coords, labels = prompt_arrays(2000, 500, points=[(1000, 250, 1)], box=(0, 0, 2000, 500))
    assert coords.tolist() == [[[0, 0], [1024, 1024], [512, 512]]]
    assert labels.tolist() == [[2, 3, 1]]


def test_upsampling_matches_torch_bilinear():
    import torch
    import torch.nn.functional as F

    from sam2enc.decoder import upsample_logits

    logits = np.random.default_rng(0).standard_normal((3, 256, 256)).astype(np.float32)
    for size in [(427, 640), (3024, 4032), (100, 37)]:
        expected = F.interpolate(
            torch.from_numpy(logits)[None], size=size, mode="bilinear", align_corners=False
        )
        ours, theirs = upsample_logits(logits, *size), expected[0].numpy()
        assert np.abs(ours - theirs).max() < 1e-4  # float32 summation order only
        assert np.array_equal(ours > 0, theirs > 0)
