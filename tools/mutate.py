"""`make mutate`: break each promise on purpose, once, and check that the tests that guard it go red.

Every mutation is a small semantic patch (one exact string replaced in one file) applied to a fresh copy
of the working tree, after which only the tests that should notice run. A mutation is *caught* when those
tests fail (pytest exit 1); a patch whose text no longer occurs is *stale* and counts as a failure of this
check, as does a baseline where the untouched tests do not pass. Prints a table and writes
build/mutate.json. Not part of `make test`: it runs the guarding tests once per mutation.

Mutation lists live next to what they break: the core and serving ones here, the Replicate-contract
ones in tests/replicate_mutations.py and the browser ones in tests/web/mutations.py, when present.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = (".venv", "node_modules", ".cache")  # linked into each copy, never copied


@dataclass(frozen=True)
class Mutation:
    name: str
    promise: str  # the README promise it breaks
    path: str  # file, relative to the repository root
    edits: tuple[tuple[str, str], ...]  # (exact text, must occur exactly once; its replacement)
    tests: tuple[str, ...]  # pytest node ids or files
    k: str | None = None  # optional -k expression


def M(name: str, promise: str, path: str, old: str, new: str, tests: tuple[str, ...], k: str | None = None):
    return Mutation(name, promise, path, ((old, new),), tests, k)


CORE = [
    M(
        "EXIF orientation ignored",
        "orientation",
        "sam2enc/image.py",
        "    6: Image.Transpose.ROTATE_270,",
        "    6: Image.Transpose.ROTATE_90,",
        ("tests/test_image_inputs.py",),
        "upright",
    ),
    M(
        "uint8 resize instead of float",
        "float resize",
        "sam2enc/preprocess.py",
        'plane = pixels.getchannel(c).convert("F")',
        'plane = pixels.getchannel(c).convert("L")',
        ("tests/test_parity.py",),
        "rocket",
    ),
    M(
        "> 16 MP branch resizes a channel twice",
        "float resize",
        "sam2enc/preprocess.py",
        "        for c in range(3):\n            channel(c)",
        "        for c in (0, 1, 1):\n            channel(c)",
        ("tests/test_preprocess.py",),
    ),
    M(
        "ImageNet normalisation off by one channel",
        "float resize",
        "sam2enc/preprocess.py",
        "MEAN = np.array([0.485, 0.456, 0.406]",
        "MEAN = np.array([0.485, 0.406, 0.456]",
        ("tests/test_parity.py",),
        "coffee",
    ),
    M(
        "fp16 cast rounds through bfloat16 precision",
        "fp16 cast",
        "sam2enc/encoder.py",
        "return {name: np.asarray(value, dtype=np.float16) for name, value in zip(names, values)}",
        "return {name: (np.asarray(value, np.float32).view(np.uint32) & 0xFFFF0000).view(np.float32)"
        ".astype(np.float16) for name, value in zip(names, values)}",
        ("tests/test_parity.py",),
        "rocket",
    ),
    M(
        "encoder outputs bound by position",
        "output binding by name",
        "sam2enc/encoder.py",
        'values = self.session.run(names, {"image": image})',
        'values = self.session.run(None, {"image": image})',
        ("tests/test_encoder.py",),
        "bound_by_name",
    ),
    M(
        "box corners labelled 3, 2",
        "box labels",
        "sam2enc/decoder.py",
        "labels += [2.0, 3.0]",
        "labels += [3.0, 2.0]",
        ("tests/test_parity.py",),
        "rocket",
    ),
    M(
        "clicks mapped with the height for x",
        "click mapping x·1024/width",
        "sam2enc/decoder.py",
        "scale = np.array([INPUT_SIZE / width, INPUT_SIZE / height], dtype=np.float32)",
        "scale = np.array([INPUT_SIZE / height, INPUT_SIZE / width], dtype=np.float32)",
        ("tests/test_parity.py",),
        "rocket",
    ),
    M(
        "padding point appended twice",
        "padding point",
        "sam2enc/export.py",
        "sparse = self.prompt_encoder._embed_points(point_coords, point_labels, pad=True)",
        "sparse = self.prompt_encoder._embed_points(\n"
        "            torch.cat([point_coords, point_coords[:, :1] * 0], 1),\n"
        "            torch.cat([point_labels, point_labels[:, :1] * 0 - 1], 1), pad=True)",
        ("tests/test_parity.py",),
        "rocket",
    ),
    M(
        "no_mem_embed not added",
        "encoder output = SAM2's predictor",
        "sam2enc/export.py",
        "vision_feats[-1] = vision_feats[-1] + self.model.no_mem_embed",
        "vision_feats[-1] = vision_feats[-1]",
        ("tests/test_parity.py",),
        "rocket",
    ),
    M(
        "reader skips the sha256 check",
        "bundle checks (Python)",
        "sam2enc/bundle.py",
        'if manifest.get("sha256") != digest:',
        "if False:",
        ("tests/test_bundle.py",),
    ),
    M(
        "manifest width and height swapped",
        "bundle format",
        "sam2enc/bundle.py",
        '"originalWidth": self.original_width,',
        '"originalWidth": self.original_height,',
        ("tests/test_predictor.py",),
        "byte_identical",
    ),
    M(
        "bundle written in place, not staged",
        "whole or nothing",
        "sam2enc/bundle.py",
        "    except BaseException:\n        shutil.rmtree(staging, ignore_errors=True)\n        raise",
        "    except BaseException:\n        raise",
        ("tests/test_bundle.py",),
        "interrupted",
    ),
    M(
        "aspect-ratio limit not enforced",
        "bad input gets one sentence",
        "sam2enc/image.py",
        "MAX_ASPECT = 20.0",
        "MAX_ASPECT = 200.0",
        ("tests/test_image_inputs.py",),
        "rejects",
    ),
    M(
        "auto falls back to the CPU silently",
        "provider reporting",
        "sam2enc/encoder.py",
        '        log.warning("Running on CPU: %s", reason)',
        "        pass",
        ("tests/test_encoder.py",),
    ),
    M(
        "device='cuda' accepts the CPU",
        "never serve on the CPU by surprise",
        "sam2enc/encoder.py",
        '        if device == "cuda":\n            raise ProviderError',
        '        if device == "never":\n            raise ProviderError',
        ("tests/test_encoder.py", "tests/test_serving_env.py"),
    ),
    M(
        "cog.yaml on the CUDA 12.8 base image",
        "the image's CUDA matches onnxruntime-gpu",
        "cog.yaml",
        'cuda: "13.0"',
        'cuda: "12.8"',
        ("tests/test_serving_env.py",),
    ),
    M(
        "cog.yaml without SAM2ENC_DEVICE=cuda",
        "never serve on the CPU by surprise",
        "cog.yaml",
        "    - SAM2ENC_DEVICE=cuda",
        "    - SAM2ENC_DEVICE=auto",
        ("tests/test_serving_env.py",),
    ),
    M(
        "CUDA libraries hard-coded as .so.12",
        "errors name what the installed build needs",
        "sam2enc/cuda.py",
        "libraries = [name for name in elf_needed(path) if not _SYSTEM.match(name)]",
        'libraries = ["libcudart.so.12", "libcublas.so.12"]',
        ("tests/test_serving_env.py",),
    ),
    M(
        "the serving path imports torch",
        "the image carries no torch",
        "sam2enc/service.py",
        "from .bundle import EMBEDDING_FILE, MANIFEST_FILE",
        "try:\n    import torch  # noqa: F401\nexcept ImportError:\n    pass\n"
        "from .bundle import EMBEDDING_FILE, MANIFEST_FILE",
        ("tests/test_serving_env.py",),
        "auto_serves",
    ),
    M(
        "old predictions never pruned",
        "disk use bounded",
        "sam2enc/service.py",
        "for old in directories[KEEP_PREDICTIONS:]:",
        "for old in directories[KEEP_PREDICTIONS * 100 :]:",
        ("tests/test_predictor.py",),
        "bounded",
    ),
    M(
        "export dumps ONNX Runtime's shape notices",
        "quiet tools",
        "sam2enc/export.py",
        'session = create_session(path, "cpu")',
        "import onnxruntime as ort\n\n    "
        'session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])',
        ("tests/test_cli.py",),
        "noise",
    ),
]


def mutation_lists() -> list[Mutation]:
    """CORE plus the lists kept beside the code they break: ``MUTATIONS = {name: (file, [(old, new),
    ...], [tests])}`` in tests/replicate_mutations.py and tests/web/mutations.py."""
    mutations = list(CORE)
    sys.path.insert(0, str(ROOT))
    for module_name, promise in (
        ("tests.replicate_mutations", "Replicate contract"),
        ("tests.web.mutations", "browser"),
    ):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        for name, (path, edits, tests) in module.MUTATIONS.items():
            mutations.append(Mutation(name, promise, path, tuple(map(tuple, edits)), tuple(tests)))
    return mutations


def copy_tree(target: Path) -> None:
    """The working tree as git sees it (tracked + untracked, not ignored), with the big caches linked."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    for name in SHARED:
        if (ROOT / name).exists():
            (target / name).symlink_to(ROOT / name)


def run_tests(tree: Path, tests: tuple[str, ...], k: str | None, timeout: float) -> tuple[int, float, str]:
    command = [str(ROOT / ".venv" / "bin" / "python"), "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
    command += [*tests, *(["-k", k] if k else [])]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    start = time.monotonic()
    try:
        done = subprocess.run(command, cwd=tree, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return 124, time.monotonic() - start, "timeout"
    tail = (done.stdout + done.stderr).strip().splitlines()
    return done.returncode, time.monotonic() - start, tail[-1] if tail else ""


def apply(tree: Path, mutation: Mutation) -> bool:
    path = tree / mutation.path
    text = path.read_text()
    for old, new in mutation.edits:
        if text.count(old) != 1:
            return False
        text = text.replace(old, new)
    path.write_text(text)
    return True


def check_import_isolation(tree: Path) -> None:
    """The copy's sam2enc must be the one imported (an editable install must not shadow it)."""
    out = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-c", "import sam2enc; print(sam2enc.__file__)"],
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not out.startswith(str(tree)):
        raise SystemExit(f"the mutated copy is not what gets imported ({out}); aborting")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.mutate", description=__doc__.splitlines()[0])
    parser.add_argument("-k", help="only mutations whose name contains this text")
    parser.add_argument("--group", choices=["all", "core", "replicate", "browser"], default="all")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per test run")
    parser.add_argument("--json", type=Path, default=ROOT / "build" / "mutate.json")
    args = parser.parse_args(argv)

    groups = {"browser": {"browser"}, "replicate": {"Replicate contract"}}
    mutations = [
        m
        for m in mutation_lists()
        if (not args.k or args.k.lower() in m.name.lower())
        and (
            args.group == "all"
            or m.promise in groups.get(args.group, set())
            or (args.group == "core" and m.promise not in {"browser", "Replicate contract"})
        )
    ]
    rows = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sam2enc-mutate-") as scratch:
        base = Path(scratch) / "base"
        copy_tree(base)
        check_import_isolation(base)
        # Baseline: every selection must pass untouched. Those without -k share one pytest run (one
        # browser, one model load); each -k selection runs on its own.
        wanted = {t for m in mutations if not m.k for t in m.tests}
        plain = tuple(sorted(t for t in wanted if t.split("::")[0] == t or t.split("::")[0] not in wanted))
        selections = ([(plain, None)] if plain else []) + sorted({(m.tests, m.k) for m in mutations if m.k})
        print(f"baseline: {len(selections)} test runs on the untouched tree", flush=True)
        broken = []
        for tests, k in selections:
            code, _, tail = run_tests(base, tests, k, args.timeout * 3)
            if code != 0:
                broken.append(f"{' '.join(tests)} -k {k}: {tail}")
        if broken:
            print("baseline fails, so no mutation can be judged:\n  " + "\n  ".join(broken))
            return 2
        for number, mutation in enumerate(mutations, 1):
            tree = Path(scratch) / f"m{number}"
            shutil.copytree(base, tree, symlinks=True)
            if not apply(tree, mutation):
                rows.append(
                    {**_row(mutation), "caught": "STALE", "seconds": 0, "tail": "patch text not found once"}
                )
            else:
                code, seconds, tail = run_tests(tree, mutation.tests, mutation.k, args.timeout)
                caught = (
                    "yes"
                    if code == 1
                    else ("TIMEOUT" if code == 124 else "NO" if code == 0 else f"rc {code}")
                )
                rows.append({**_row(mutation), "caught": caught, "seconds": round(seconds, 1), "tail": tail})
            shutil.rmtree(tree, ignore_errors=True)
            row = rows[-1]
            print(
                f"[{number}/{len(mutations)}] {row['caught']:>7}  {mutation.name}  ({row['seconds']} s)",
                flush=True,
            )
    print_table(rows)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2) + "\n")
    missed = [r for r in rows if r["caught"] != "yes"]
    elapsed = time.monotonic() - started
    print(f"\n{len(rows) - len(missed)}/{len(rows)} caught in {elapsed:.0f} s; wrote {args.json}")
    return 1 if missed else 0


def _row(mutation: Mutation) -> dict:
    files: dict[str, list[str]] = {}
    for test in mutation.tests:
        path, _, name = test.partition("::")
        files.setdefault(Path(path).name, []).extend([name.removeprefix("test_")] if name else [])
    tests = "; ".join(f"{f}::{','.join(n)}" if n else f for f, n in files.items())
    tests += f" -k {mutation.k}" if mutation.k else ""
    return {"mutation": mutation.name, "promise": mutation.promise, "file": mutation.path, "tests": tests}


def print_table(rows: list[dict]) -> None:
    widths = [
        max(
            len(str(r[key]))
            for r in [*rows, {"mutation": "mutation", "tests": "tests run", "caught": "caught"}]
        )
        for key in ("mutation", "tests", "caught")
    ]
    header = ("mutation", "tests run", "caught")
    print("\n" + " | ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(str(row[key]).ljust(w) for key, w in zip(("mutation", "tests", "caught"), widths)))


if __name__ == "__main__":
    sys.exit(main())
