"""SAM2's own ``SAM2ImagePredictor``, runnable without torchvision — the yardstick for parity.

``sam2.utils.transforms`` imports ``Normalize``, ``Resize`` and ``ToTensor`` from torchvision, which
does not import beside a CPU build of torch. ``install_torchvision_shim()`` registers a stand-in module
with the same arithmetic torchvision runs on tensors (``Resize`` on a float tensor is
``interpolate(mode="bilinear", antialias=True, align_corners=False)``), so the predictor itself —
its preprocessing, ``set_image`` and ``predict`` — runs unmodified. Used by the tests and the
benchmark, never by the serving path.
"""

from __future__ import annotations

import sys
import types

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class ToTensor:
    """PIL image or HWC uint8 array → CHW float in [0, 1], as torchvision's ToTensor."""

    def __call__(self, pic) -> torch.Tensor:
        array = np.array(pic, dtype=np.uint8, copy=True)
        if array.ndim == 2:
            array = array[:, :, None]
        return torch.from_numpy(array).permute(2, 0, 1).contiguous().to(torch.float32).div(255)


class Resize(nn.Module):
    def __init__(self, size: list[int]) -> None:
        super().__init__()
        self.size = [int(s) for s in size]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(
            x.unsqueeze(0), size=self.size, mode="bilinear", align_corners=False, antialias=True
        ).squeeze(0)


class Normalize(nn.Module):
    def __init__(self, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.mean = mean
        self.std = std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, dtype=x.dtype).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype).view(-1, 1, 1)
        return (x - mean) / std


def install_torchvision_shim() -> None:
    """Make ``from torchvision.transforms import Normalize, Resize, ToTensor`` work without torchvision."""
    try:
        import torchvision.transforms  # noqa: F401

        return  # a working torchvision is there: use the real thing
    except Exception:
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
    package = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    transforms.ToTensor, transforms.Resize, transforms.Normalize = ToTensor, Resize, Normalize
    package.transforms = transforms
    package.__path__ = []  # a package, so submodule imports resolve through sys.modules
    sys.modules["torchvision"] = package
    sys.modules["torchvision.transforms"] = transforms


def image_predictor(model: nn.Module):
    """A ``SAM2ImagePredictor`` over an already built model."""
    install_torchvision_shim()
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    return SAM2ImagePredictor(model)


def predictor_features(predictor) -> dict[str, np.ndarray]:
    """The features ``set_image`` computed, under the bundle's tensor names, as float32."""
    feats = predictor._features
    return {
        "image_embed": feats["image_embed"].float().cpu().numpy(),
        "high_res_feats_0": feats["high_res_feats"][0].float().cpu().numpy(),
        "high_res_feats_1": feats["high_res_feats"][1].float().cpu().numpy(),
    }
