"""SAM2.1 checkpoint → encoder.onnx, decoder.onnx, decoder_hires.onnx and model.json.

The two wrappers below are the graphs, written as plain torch over SAM2's own modules so that they
compute exactly what ``SAM2ImagePredictor`` does:

- ``EncoderGraph``: ``forward_image`` (backbone + ``conv_s0``/``conv_s1``), ``_prepare_backbone_features``,
  ``no_mem_embed`` where the model adds it, reshaped to (1,C,H,W) and cast to float16 in the graph.
- ``DecoderGraph``: the prompt encoder (which appends the one padding point itself) and the mask
  decoder with ``multimask_output=True``; ``has_mask_input`` chooses between the mask embedding and
  ``no_mask_embed``, as the predictor does with ``mask_input=None``.

Every file is verified (``onnx.checker`` and one ONNX Runtime run against the torch module) in a
staging directory and only then moved into place; model.json, written last, marks the export done.
Needs torch and sam2, never torchvision. Random-weight exports for tests and the offline demo live in
sam2enc.testing, not here.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .bundle import INPUT_SIZE, TENSORS
from .download import sha256_file
from .errors import ModelError
from .modeldir import DECODER_FILE, DECODER_HIRES_FILE, ENCODER_FILE, GRAPH_FILES, MODEL_INFO_FILE
from .models import get_model

OPSET = 17
HIRES_SIZE = 512
DECODER_INPUTS = [
    "image_embed",
    "high_res_feats_0",
    "high_res_feats_1",
    "point_coords",
    "point_labels",
    "mask_input",
    "has_mask_input",
]
DECODER_OUTPUTS = ["masks", "iou_predictions"]
# (file, upsampled mask size or None for SAM2's 256², model.json label)
DECODERS = ((DECODER_FILE, None, "decoder"), (DECODER_HIRES_FILE, HIRES_SIZE, "decoder_hires"))
MAX_RELATIVE_ERROR = 1e-3

log = logging.getLogger(__name__)


class EncoderGraph(nn.Module):
    """Normalised (1,3,1024,1024) image → the three feature maps of ``set_image``, as float16."""

    def __init__(self, sam2_model: nn.Module) -> None:
        super().__init__()
        self.model = sam2_model
        self.sizes = [shape[2:] for shape in TENSORS.values()]  # 64, 256, 128

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        backbone_out = self.model.forward_image(image)
        _, vision_feats, _, _ = self.model._prepare_backbone_features(backbone_out)
        if self.model.directly_add_no_mem_embed:
            vision_feats[-1] = vision_feats[-1] + self.model.no_mem_embed
        # vision_feats run from high to low resolution, as (HW, 1, C)
        hr0, hr1, embed = [
            feat.permute(1, 2, 0).reshape(1, -1, *size)
            for feat, size in zip(vision_feats, [self.sizes[1], self.sizes[2], self.sizes[0]])
        ]
        return embed.half(), hr0.half(), hr1.half()


class DecoderGraph(nn.Module):
    """Features + prompts in 1024×1024 model space → 3 mask logits and their predicted IoU."""

    def __init__(self, sam2_model: nn.Module, upsample_to: int | None = None) -> None:
        super().__init__()
        self.prompt_encoder = sam2_model.sam_prompt_encoder
        self.mask_decoder = sam2_model.sam_mask_decoder
        self.upsample_to = upsample_to

    def forward(
        self,
        image_embed: torch.Tensor,
        high_res_feats_0: torch.Tensor,
        high_res_feats_1: torch.Tensor,
        point_coords: torch.Tensor,
        point_labels: torch.Tensor,
        mask_input: torch.Tensor,
        has_mask_input: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        sparse = self.prompt_encoder._embed_points(point_coords, point_labels, pad=True)
        has_mask = has_mask_input.reshape(1, 1, 1, 1)
        no_mask = self.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        dense = has_mask * self.prompt_encoder._embed_masks(mask_input) + (1 - has_mask) * no_mask
        masks, iou_predictions, _, _ = self.mask_decoder(
            image_embeddings=image_embed,
            image_pe=self.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=True,
            repeat_image=False,
            high_res_features=[high_res_feats_0, high_res_feats_1],
        )
        if self.upsample_to:
            size = (self.upsample_to, self.upsample_to)
            masks = F.interpolate(masks, size=size, mode="bilinear", align_corners=False)
        return masks, iou_predictions


def load_sam2(model_name: str, checkpoint: str | Path | None) -> nn.Module:
    """Build SAM2.1 in eval mode on CPU; ``checkpoint=None``: SAM2's random initialisation, which only
    sam2enc.testing asks for (to make a random checkpoint file that is then exported like any other)."""
    from sam2.build_sam import build_sam2

    spec = get_model(model_name)
    return build_sam2(spec.config, str(checkpoint) if checkpoint else None, device="cpu", mode="eval")


def sample_image(seed: int = 0) -> torch.Tensor:
    """A normalised input with structure at every scale, for the export check."""
    gen = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(-2.0, 2.0, INPUT_SIZE)
    image = (ramp[None, :, None] + ramp[None, None, :]).repeat(3, 1, 1) / 2
    image = image + 0.5 * torch.randn(3, INPUT_SIZE, INPUT_SIZE, generator=gen)
    return image[None].float()


def sample_prompt(features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Decoder inputs for the export check: a box and two clicks, no previous mask."""
    return {
        **{name: value.float() for name, value in features.items()},
        "point_coords": torch.tensor([[[200.0, 180.0], [800.0, 700.0], [500.0, 450.0], [300, 600]]]),
        "point_labels": torch.tensor([[2.0, 3.0, 1.0, 0.0]]),
        "mask_input": torch.zeros(1, 1, 256, 256),
        "has_mask_input": torch.zeros(1),
    }


def relative_l2(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))


def export_model(
    model_name: str, checkpoint: str | Path, out_dir: str | Path, *, random_weights: bool = False
) -> dict:
    """Export the three graphs of one SAM2.1 variant into ``out_dir`` and return model.json's content.

    ``random_weights`` only records that the checkpoint is a random one (sam2enc.testing makes those),
    so that nothing serves it silently.
    """
    spec = get_model(model_name)
    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    if not checkpoint.is_file():
        raise ModelError(f"checkpoint {checkpoint} does not exist (`sam2enc weights` downloads Meta's)")
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_grad_enabled(False)

    step = _Steps(total=5)
    step(f"building {spec.full_name} from {checkpoint}")
    model = load_sam2(model_name, checkpoint)
    staging = Path(tempfile.mkdtemp(prefix=".export.", dir=out_dir))
    try:
        errors = _export_graphs(model, staging, step)
        step("writing model.json")
        info = _model_info(model_name, checkpoint, random_weights, errors, staging)
        _publish(staging, out_dir, info)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    step.done(f"exported {spec.full_name} to {out_dir}")
    return info


def _export_graphs(model: nn.Module, staging: Path, step: _Steps) -> dict[str, float]:
    """The encoder, then both decoders fed with its features: each written and verified in ``staging``;
    returns each graph's worst relative L2 against the torch module."""
    encoder = EncoderGraph(model).eval()
    image = sample_image()
    step(f"exporting {ENCODER_FILE}")
    _export(encoder, (image,), staging / ENCODER_FILE, ["image"], list(TENSORS), {}, TENSORS)
    features = dict(zip(TENSORS, encoder(image)))
    errors = {"encoder": _verify(staging / ENCODER_FILE, {"image": image}, features)}

    prompt = sample_prompt(features)
    args = tuple(prompt[name] for name in DECODER_INPUTS)
    dynamic = {"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}}
    for filename, size, label in DECODERS:
        step(f"exporting {filename}")
        graph = DecoderGraph(model, upsample_to=size).eval()
        mask_size = size or 256
        shapes = {"masks": (1, 3, mask_size, mask_size), "iou_predictions": (1, 3)}
        _export(graph, args, staging / filename, DECODER_INPUTS, DECODER_OUTPUTS, dynamic, shapes)
        errors[label] = _verify(staging / filename, prompt, dict(zip(DECODER_OUTPUTS, graph(*args))))
    return errors


def _model_info(
    model_name: str, checkpoint: Path, random_weights: bool, errors: dict[str, float], staging: Path
) -> dict:
    """model.json: what was exported, from which checkpoint and toolchain, and how well it verified."""
    import onnx

    spec = get_model(model_name)
    return {
        "model": spec.full_name,
        "size": spec.name,
        "checkpointSha256": sha256_file(checkpoint),
        "randomWeights": random_weights,
        "sam2Version": package_version("sam2"),
        "torchVersion": torch.__version__,
        "opset": OPSET,
        "exporter": "torch.onnx (TorchScript-based, dynamo=False)",
        "verificationMaxRelativeL2": errors,
        "graphs": {
            name: _describe_graph(onnx.load(str(staging / name), load_external_data=False))
            for name in GRAPH_FILES
        },
    }


def _publish(staging: Path, out_dir: Path, info: dict) -> None:
    """Move the verified graphs into place; model.json, written last, marks the export complete."""
    for name in GRAPH_FILES:
        (staging / name).replace(out_dir / name)
    (out_dir / MODEL_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")


class _Steps:
    """Numbered progress lines with the time each step took."""

    def __init__(self, total: int) -> None:
        self.total, self.n, self.start = total, 0, time.perf_counter()
        self.t = self.start

    def __call__(self, text: str) -> None:
        self.n += 1
        now = time.perf_counter()
        log.info("[%d/%d] %s (+%.1f s)", self.n, self.total, text, now - self.t)
        self.t = now

    def done(self, text: str) -> None:
        log.info("%s in %.1f s", text, time.perf_counter() - self.start)


@contextmanager
def _quiet_tracer(graph: str) -> Iterator[None]:
    """The tracer warns about every Python-level shape check in SAM2 (harmless: the shapes are fixed).
    Count them into one line instead of dumping screens of TracerWarnings; DEBUG logging shows each."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught:
        log.debug("%s: %s: %s", graph, warning.category.__name__, warning.message)
    if caught:
        kinds = sorted({w.category.__name__ for w in caught})
        log.info(
            "    %s: %d tracer warnings captured (%s; -v shows them)", graph, len(caught), ", ".join(kinds)
        )


def _export(module, args, path: Path, inputs, outputs, dynamic_axes, output_shapes) -> None:
    """Trace to ONNX, state the known output shapes (the tracer leaves them symbolic), check."""
    import onnx

    with _quiet_tracer(path.name):
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=dynamic_axes or None,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    model = onnx.load(str(path))
    for output in model.graph.output:
        dims = output.type.tensor_type.shape.dim
        del dims[:]
        for size in output_shapes[output.name]:
            dims.add().dim_value = size
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))


def _verify(path: Path, feeds: dict[str, torch.Tensor], reference: dict) -> float:
    """Run the file once in ONNX Runtime and compare every output with the torch module's."""
    from .encoder import create_session

    session = create_session(path, "cpu")  # errors-only ORT logging: no "Error merging shape info"
    wanted = {i.name for i in session.get_inputs()}
    got = session.run(list(reference), {k: v.numpy() for k, v in feeds.items() if k in wanted})
    worst = 0.0
    for (name, expected), actual in zip(reference.items(), got):
        err = relative_l2(actual, expected.float().numpy())
        worst = max(worst, err)
        log.info("    %s:%s ONNX Runtime vs torch relative L2 %.2e", path.name, name, err)
    if worst > MAX_RELATIVE_ERROR:
        raise RuntimeError(f"{path.name} differs from torch by {worst:.2e} (> {MAX_RELATIVE_ERROR})")
    return worst


def _describe_graph(model) -> dict:
    def dims(value) -> list:
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    def elem(value) -> str:
        import onnx

        return onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type).name

    return {
        "inputs": {v.name: {"shape": dims(v), "dtype": elem(v)} for v in model.graph.input},
        "outputs": {v.name: {"shape": dims(v), "dtype": elem(v)} for v in model.graph.output},
    }


def package_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None
