"""Promise: preprocess.onnx (resize + normalise on the encoder's device) computes SAM2Transforms' input.

Compared with torch itself (``interpolate(bilinear, antialias=True)`` as SAM2's transforms call it, then
ImageNet normalisation) on real photos, every EXIF orientation, and the resize weights alone against
torch's for the sizes that matter. Feature and mask parity through the encoder is in test_parity.py.
About 3 s on 2 cores.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from sam2enc.image import ORIENTATIONS, load_image
from sam2enc.preprocess import MEAN, STD
from sam2enc.preprocess_graph import GRAPH_FILE, GraphPreprocessor, aa_weights, build_graph
from tests.conftest import skimage_data, upright_rgb


def sam2_input(rgb: np.ndarray) -> np.ndarray:
    """SAM2Transforms on an upright uint8 image: ToTensor, Resize((1024, 1024)), Normalize."""
    x = torch.from_numpy(np.array(rgb)).permute(2, 0, 1).float().div(255)
    x = F.interpolate(x[None], size=(1024, 1024), mode="bilinear", align_corners=False, antialias=True)
    return ((x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)).numpy()


@pytest.fixture(scope="module")
def graph():
    """The graph as build_graph() makes it; test_committed_graph_is_the_built_one ties the file to it."""
    return GraphPreprocessor(["CPUExecutionProvider"], build_graph().SerializeToString())


@pytest.mark.parametrize("size", [1, 2, 3, 300, 427, 512, 1000, 1023, 1024, 1025, 1536, 3024, 4032])
def test_resize_weights_are_torchs(size):
    """Row i of the matrix is torch's filter for output pixel i: resizing the identity reveals it."""
    identity = torch.eye(size)[None, None]
    expected = F.interpolate(
        identity, size=(size, 1024), mode="bilinear", align_corners=False, antialias=True
    )
    np.testing.assert_allclose(aa_weights(size), expected[0, 0].T.numpy(), rtol=0, atol=2e-7)


@pytest.mark.parametrize("name", ["astronaut", "coffee", "rocket", "gravel_tiled"])
def test_graph_computes_sam2_transforms(name, graph, tmp_path):
    data = skimage_data()
    if name == "gravel_tiled":  # fine texture downscaled ~2.4×: where a wrong filter shows
        gravel = np.asarray(Image.open(data / "gravel.png").convert("RGB"))
        rgb = np.ascontiguousarray(np.tile(gravel, (4, 5, 1))[:1900, :2500])
    else:
        rgb = upright_rgb(next(data.glob(f"{name}.*")))
    ours = graph(rgb).numpy()
    assert ours.shape == (1, 3, 1024, 1024) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, sam2_input(rgb), rtol=0, atol=5e-6)


@pytest.mark.parametrize("tag", sorted(ORIENTATIONS))
def test_exif_orientation_is_folded_into_the_weights(tag, graph, tmp_path):
    """The graph is fed the pixels as stored; its result is SAM2's input for the upright photo."""
    chelsea = Image.open(skimage_data() / "chelsea.png").convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = tag
    path = tmp_path / f"chelsea_{tag}.png"
    chelsea.crop((0, 0, 451, 287)).save(path, exif=exif)
    loaded = load_image(path)
    assert loaded.orientation == ORIENTATIONS[tag]
    np.testing.assert_allclose(graph(loaded).numpy(), sam2_input(upright_rgb(path)), rtol=0, atol=5e-6)


def test_onnx_runtime_antialiased_resize_would_break_parity():
    """Guard for building the resize from MatMuls: ONNX's own Resize(antialias=1) in ONNX Runtime is not
    torch's filter on fine detail (max 0.16 per pixel on tiled gravel, features 3.1e-3 > 1e-3)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    gravel = np.asarray(Image.open(skimage_data() / "gravel.png").convert("L"), np.float32) / 255
    image = np.tile(gravel, (4, 5))[None, None, :1900, :2500].copy()
    resize = helper.make_node(
        "Resize",
        ["x", "", "", "sizes"],
        ["y"],
        mode="linear",
        antialias=1,
        coordinate_transformation_mode="half_pixel",
    )
    graph = helper.make_graph(
        [resize],
        "resize",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, None, None])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array([1, 1, 1024, 1024], np.int64), "sizes")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    theirs = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": image}
    )[0]
    torch_resized = F.interpolate(torch.from_numpy(image), size=(1024, 1024), mode="bilinear", antialias=True)
    assert np.abs(theirs - torch_resized.numpy()).max() > 0.02  # in [0, 1] units: ≥ 5 grey levels


def test_committed_graph_is_the_built_one():
    """preprocess.onnx is what build_graph() makes (the serving image has no onnx package to build it)."""
    assert GRAPH_FILE.read_bytes() == build_graph().SerializeToString(), (
        "run python -m sam2enc.preprocess_graph"
    )


def test_encoder_takes_the_graph_on_cuda_only(models_dir):
    from sam2enc.encoder import Encoder

    assert Encoder(models_dir, device="cpu").preprocessing == "host"  # the dense resize is slower there
    encoder = Encoder(models_dir, device="cpu", preprocessing="graph")
    assert encoder.preprocessing == "graph"
    assert encoder.preprocess(np.zeros((10, 20, 3), np.uint8)).shape() == [1, 3, 1024, 1024]
    with pytest.raises(ValueError, match="preprocessing must be"):
        Encoder(models_dir, device="cpu", preprocessing="gpu")
