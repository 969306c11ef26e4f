"""What a newcomer meets first: a plain `pip install .` whose commands say what to add, flags with one
meaning whose 0.1.0 spellings still work (with a warning) in every entry point, a README that maps every
module. Fast: subprocesses that stop at argument parsing or at the missing dependency (~1 s each)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What `pip install .` leaves out: the runtime (extra `cpu`/`serve`) and the export toolchain.
OPTIONAL = ("torch", "sam2", "onnx", "onnxruntime", "hydra", "iopath", "tqdm")
# Run a module as if those were not installed: a meta-path finder refuses them, as a fresh venv would.
BLOCKED = """
import importlib.abc, runpy, sys
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Absent())
sys.argv = [{module!r}, *{args!r}]
runpy.run_module({module!r}, run_name="__main__", alter_sys=True)
"""


def run_without_extras(module: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """``python -m module args`` in ``cwd`` with this checkout's sam2enc and no optional dependency."""
    code = BLOCKED.format(blocked=set(OPTIONAL), module=module, args=list(args))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )


def one_sentence(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ("export", "--model", "tiny", "--checkpoint", "x.pt", "--models-dir", "d"),
        ("export", "--model", "tiny", "--random-weights", "--models-dir", "d"),
        ("weights", "--model", "tiny", "--models-dir", "d"),
    ],
    ids=["export", "export-random", "weights"],
)
def test_export_without_torch_or_sam2_names_what_to_pip_install(args, tmp_path):
    line = one_sentence(run_without_extras("sam2enc", *args, cwd=tmp_path))
    assert "pip install '.[export]'" in line
    assert "SAM2_BUILD_CUDA=0 pip install --no-deps --no-build-isolation sam2==1.1.0" in line
    assert list(tmp_path.iterdir()) == []  # nothing downloaded, nothing half-exported


def test_encode_and_decode_without_onnxruntime_name_the_extra(tmp_path):
    photo = ROOT / "assets" / "astronaut.jpg"
    for args in (("encode", str(photo), "--out", "b"), ("decode", "b", "--point", "1,1,1", "--out", "m.png")):
        line = one_sentence(run_without_extras("sam2enc", *args, cwd=tmp_path))
        assert "ONNX Runtime" in line and "pip install '.[cpu]'" in line, line
    assert list(tmp_path.iterdir()) == []


def test_help_needs_no_optional_dependency():
    result = run_without_extras("sam2enc", "encode", "--help")
    assert result.returncode == 0 and "--device {auto,cuda,cpu}" in result.stdout, result.stderr


def test_the_cli_offers_exactly_the_encoders_devices():
    from sam2enc.__main__ import DEVICES
    from sam2enc.encoder import DEVICES as ENCODER_DEVICES

    assert DEVICES == ENCODER_DEVICES


# --- one meaning per flag ---------------------------------------------------------------------------


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_out_is_only_ever_the_commands_product():
    """--out names what encode and decode write; export and weights write into --models-dir only."""
    for command in ("export", "weights"):
        assert "--out" not in run("-m", "sam2enc", command, "--help").stdout
    for command in ("encode", "decode"):
        assert "--out OUT" in run("-m", "sam2enc", command, "--help").stdout


@pytest.mark.parametrize(
    "entry_point",
    [
        ("-m", "sam2enc", "export", "--model", "tiny", "--out", "{dir}", "--help"),
        ("-m", "sam2enc", "weights", "--model", "tiny", "--out", "{dir}", "--help"),
        ("-m", "sam2enc", "encode", "assets/astronaut.jpg", "--out", "o", "--models", "{dir}"),
        ("-m", "sam2enc.web", "serve", "--no-demo", "--models", "{dir}"),
        # --help after the old flag: argparse runs the flag's action first, so this checks the warning
        # without running the whole demo
        ("-m", "tools.demo", "--models", "{dir}", "--help"),
    ],
    ids=["export --out", "weights --out", "encode --models", "web --models", "demo --models"],
)
def test_the_0_1_0_names_of_the_model_directory_still_work_with_a_warning(entry_point, tmp_path):
    nowhere = tmp_path / "nowhere"
    result = run(*(part.format(dir=nowhere) for part in entry_point))
    old_flag = entry_point[entry_point.index("{dir}") - 1]
    assert f"warning: {old_flag} is sam2enc 0.1.0's name" in result.stderr, result.stderr
    assert "use --models-dir" in result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    if "--help" not in entry_point:
        # the old name was honoured: the command looked in that directory, found nothing, said so
        assert result.returncode == 2 and str(nowhere) in result.stderr, result.stderr


# --- the README maps every module ---------------------------------------------------------------------


def test_the_readme_code_map_names_every_module():
    readme = (ROOT / "README.md").read_text()
    code_map = readme[readme.index("## Code map") :].split("\n## ")[0]  # to the next section, if any
    named = set(re.findall(r"`([\w/.]+\.py)`", code_map))
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "sam2enc").rglob("*.py")}
    modules |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "tools").glob("*.py")}
    modules -= {"tools/__init__.py"}
    assert modules - named == set(), "add these to README.md's code map"


def test_the_readme_opens_with_the_two_commands():
    opening = "\n".join((ROOT / "README.md").read_text().splitlines()[:40])
    assert "make demo" in opening and "make test" in opening
