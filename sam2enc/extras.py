"""What each command needs beyond ``pip install .``, and the one sentence a user gets when it is missing.

A plain install carries NumPy and Pillow only, so that a GPU server can add ``onnxruntime-gpu`` and a
laptop ``onnxruntime`` (the two wheels provide the same module and must not be installed together).
Exporting needs PyTorch and SAM2 as well; SAM2 is an sdist that builds a CUDA extension and pulls its
own torch unless it is installed with the line below, which is why no extra can carry it.
"""

from __future__ import annotations

import importlib.util

SAM2_INSTALL = "SAM2_BUILD_CUDA=0 pip install --no-deps --no-build-isolation sam2==1.1.0"
RUNTIME_HINT = "pip install '.[cpu]' from the sam2enc checkout (or '.[serve]' on an NVIDIA GPU, never both)"
EXPORT_HINT = f"pip install '.[export]' from the sam2enc checkout, then {SAM2_INSTALL}"
# The modules export imports (hydra and iopath through sam2), each with the distribution that provides it.
EXPORT_MODULES = {
    "torch": "torch",
    "onnx": "onnx",
    "onnxruntime": "onnxruntime",
    "hydra": "hydra-core",
    "iopath": "iopath",
    "sam2": "sam2",
}


class MissingDependency(ImportError):
    """An optional dependency is not installed; the message says what to ``pip install``."""


def require_runtime() -> None:
    """Raise MissingDependency unless an ONNX Runtime (CPU or GPU build) can be imported."""
    if not _installed("onnxruntime"):
        raise MissingDependency(
            f"encoding and decoding need ONNX Runtime, which is not installed: {RUNTIME_HINT}"
        )


def require_export() -> None:
    """Raise MissingDependency naming every missing piece of the export toolchain, before any work."""
    missing = [dist for module, dist in EXPORT_MODULES.items() if not _installed(module)]
    if missing:
        raise MissingDependency(
            f"exporting needs PyTorch and SAM2, and {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not installed: {EXPORT_HINT}"
        )


def explain(exc: ModuleNotFoundError) -> str | None:
    """The sentence for a third-party import that failed mid-command, or None if it is not one of ours."""
    top = (exc.name or "").partition(".")[0]
    if top == "onnxruntime":
        return f"ONNX Runtime is not installed: {RUNTIME_HINT}"
    if top in EXPORT_MODULES or top == "tqdm":
        return f"{top} is not installed; exporting needs PyTorch and SAM2: {EXPORT_HINT}"
    return None


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
