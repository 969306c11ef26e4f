"""Random-weight SAM2.1 exports, for the test suite, the offline demo and ``make web --random-if-missing``.

Never for serving: model.json records ``randomWeights: true`` and every user of it says so loudly. This
is the one way to ask for random weights (``sam2enc export --random-weights`` calls ``export_random``).

A random export takes ~15 s for tiny, so ``cached_random_export`` keeps one per key: the key hashes the
source of every sam2enc module the export imports (found by walking the imports, not listed by hand, so a
new module cannot leave a stale cache behind) and the versions of the packages that shape its bytes.
"""

from __future__ import annotations

import ast
import hashlib
import logging
from pathlib import Path

from .export import export_model, load_sam2, package_version
from .modeldir import MODEL_INFO_FILE
from .models import get_model

RANDOM_SEED = 0
EXPORT_PACKAGES = ("torch", "sam2", "onnx", "onnxruntime")
PACKAGE_DIR = Path(__file__).resolve().parent

log = logging.getLogger(__name__)


def export_random(model_name: str, out_dir: str | Path, seed: int = RANDOM_SEED) -> Path:
    """A randomly initialised SAM2.1 checkpoint (``random_<name>.pt``) and its export, in ``out_dir``.

    The checkpoint is saved beside the ONNX files so that benchmarks and parity tests can load the very
    weights the graphs came from.
    """
    import torch

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    checkpoint = out_dir / f"random_{get_model(model_name).name}.pt"
    torch.save({"model": load_sam2(model_name, None).state_dict()}, checkpoint)
    log.warning("exporting RANDOM weights (seed %d): bundles and masks from them are meaningless", seed)
    export_model(model_name, checkpoint, out_dir, random_weights=True)
    return out_dir


def cached_random_export(cache: str | Path, model_name: str = "tiny") -> Path:
    """``cache/<model>-random-<key>/``: exported once, reused until anything that shapes it changes."""
    directory = Path(cache) / f"{model_name}-random-{random_export_key(model_name)}"
    if not (directory / MODEL_INFO_FILE).exists():
        export_random(model_name, directory)
    return directory


def random_export_key(model_name: str = "tiny", seed: int = RANDOM_SEED) -> str:
    """16 hex digits over the model, the seed, the export's sources and the toolchain's versions."""
    digest = hashlib.sha256(f"{model_name}:{seed}".encode())
    for path in export_sources():
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    for package in EXPORT_PACKAGES:
        digest.update(f"{package}={package_version(package)}".encode())
    return digest.hexdigest()[:16]


def export_sources(start: str = "sam2enc.testing") -> list[Path]:
    """The files of ``start`` and of every sam2enc module it imports, transitively (imports inside
    functions too: export verifies through sam2enc.encoder that way), sorted."""
    seen: dict[str, Path] = {}
    todo = [start]
    while todo:
        module = todo.pop()
        path = _module_file(module)
        if module in seen or path is None:
            continue
        seen[module] = path
        todo.extend(_imported_modules(module, path))
    return sorted(seen.values())


def _imported_modules(module: str, path: Path) -> list[str]:
    """The sam2enc modules (candidates: ``from . import x`` may name a module) that ``path`` imports."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found += [base, *(f"{base}.{alias.name}" for alias in node.names)]
    return [name for name in found if name == "sam2enc" or name.startswith("sam2enc.")]


def _module_file(module: str) -> Path | None:
    """sam2enc.a.b → sam2enc/a/b.py or sam2enc/a/b/__init__.py; None for the package itself (its lazy
    __init__ shapes nothing) or a name that is not a module (``from .x import function``)."""
    parts = module.split(".")[1:]
    if not parts:
        return None
    relative = Path(*parts)
    for candidate in (PACKAGE_DIR / relative.with_suffix(".py"), PACKAGE_DIR / relative / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None
