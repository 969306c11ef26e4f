"""The serving environment as the Cog image builds it: a venv from requirements-serve.txt alone.

The image installs requirements-serve.txt (plus Cog) on the CUDA base image that cog.yaml selects and
sets cog.yaml's ``build.environment``. Here the same venv runs predict.py through Cog's HTTP server:
- the CUDA major in cog.yaml is the one the pinned onnxruntime-gpu was built for (read from the wheel);
- with cog.yaml's environment (``SAM2ENC_DEVICE=cuda``), setup fails on a machine without a usable CUDA
  provider (this one) and names the libraries of that CUDA major;
- with the device left to ``auto``, a real photo is served on the CPU and torch, torchvision and sam2 are
  never imported.
The venv is cached in .cache/ under a hash of the requirements, so only the first run downloads.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml

from sam2enc.bundle import parse_bundle
from sam2enc.pipeline import encode
from tests.cogserver import ROOT, launch, wait_for_setup

COG_VERSION = "0.23.1"  # the Cog the image runs; requirements-dev.txt pins the same
FORBIDDEN = ("torch", "torchvision", "sam2")
COG_YAML = yaml.safe_load((ROOT / "cog.yaml").read_text())

# Put on the worker's PYTHONPATH: records (and refuses) every attempt to import a forbidden package.
IMPORT_GUARD = f"""
import os, sys

pytestmark = [pytest.mark.server, pytest.mark.slow]
FORBIDDEN = {FORBIDDEN!r}
class _Guard:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN:
            with open(os.environ["SAM2ENC_IMPORT_LOG"], "a") as log:
                log.write(name + "\\n")
            raise ImportError(f"{{name}} must not be imported in the serving image")
        return None
sys.meta_path.insert(0, _Guard())
"""


@pytest.fixture(scope="session")
def serve_python() -> Path:
    """python of a venv holding requirements-serve.txt and Cog, nothing else; built once, cached."""
    requirements = (ROOT / "requirements-serve.txt").read_text()
    key = hashlib.sha256(f"{requirements}cog=={COG_VERSION}{sys.version}".encode()).hexdigest()[:12]
    venv = ROOT / ".cache" / f"serve-venv-{key}"
    python = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "-r",
                str(ROOT / "requirements-serve.txt"),
                f"cog=={COG_VERSION}",
            ],
            check=True,
        )
        (venv / ".complete").touch()
    return python


def run_in(python: Path, code: str) -> str:
    return subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout


def test_the_venv_holds_only_what_requirements_serve_pins(serve_python):
    installed = json.loads(
        run_in(
            serve_python,
            "import json, importlib.metadata as m; "
            "print(json.dumps({d.metadata['Name'].lower(): d.version for d in m.distributions()}))",
        )
    )
    for line in (ROOT / "requirements-serve.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            assert installed.get(name.lower()) == version, line
    assert not set(FORBIDDEN) & set(installed)


def test_cog_yaml_cuda_major_is_the_one_the_pinned_onnxruntime_gpu_needs(serve_python):
    """Read from the installed wheel: its build info and the NEEDED entries of its CUDA provider."""
    need = json.loads(
        run_in(
            serve_python,
            "import json; from sam2enc.cuda import cuda_requirements as r; "
            "n = r(); print(json.dumps([n.cuda_version, n.cudnn_major, n.libraries]))",
        )
    )
    cuda_version, cudnn_major, libraries = need
    cuda_major = cuda_version.split(".")[0]
    linked = {m.group(1) for name in libraries if (m := re.match(r"libcudart\.so\.(\d+)$", name))}
    assert linked == {cuda_major}, f"build says CUDA {cuda_version} but the provider links {libraries}"
    assert str(COG_YAML["build"]["cuda"]).split(".")[0] == cuda_major, (
        f"cog.yaml selects CUDA {COG_YAML['build']['cuda']} but onnxruntime-gpu in requirements-serve.txt "
        f"is built for CUDA {cuda_version}: the image would serve on the CPU"
    )
    assert str(COG_YAML["build"]["cudnn"]).split(".")[0] == cudnn_major


def test_the_gpu_jpeg_decoder_needs_the_same_cuda_and_stays_out_of_the_way_without_it(serve_python):
    """nvJPEG (sam2enc/gpu_decode.py) comes as a wheel: its libnvjpeg.so major must be cog.yaml's CUDA.
    Without a GPU, asking for the decoder gives None (Pillow decodes), never an exception."""
    found = json.loads(
        run_in(
            serve_python,
            "import json, importlib.util, pathlib; "
            "spec = importlib.util.find_spec('nvidia'); "
            "dirs = [pathlib.Path(d) for d in spec.submodule_search_locations]; "
            "libs = [p.name for d in dirs for p in d.rglob('libnvjpeg.so.*')]; "
            "from sam2enc.gpu_decode import gpu_jpeg_decoder; "
            "print(json.dumps([libs, gpu_jpeg_decoder() is None]))",
        )
    )
    libraries, fell_back = found
    majors = {m.group(1) for name in libraries if (m := re.fullmatch(r"libnvjpeg\.so\.(\d+)", name))}
    assert majors == {str(COG_YAML["build"]["cuda"]).split(".")[0]}, libraries
    assert fell_back


def image_environment() -> dict[str, str]:
    """cog.yaml's build.environment, as the image sets it."""
    return dict(item.split("=", 1) for item in COG_YAML["build"].get("environment", []))


def test_the_image_environment_asks_for_cuda():
    assert image_environment().get("SAM2ENC_DEVICE") == "cuda"


def newest_served_env() -> dict[str, str] | None:
    """The serving environment (SAM2ENC_PRECISION, SAM2ENC_CUDA_GRAPH) that the newest dated GPU bench
    report chose for its largest model; None while no report carries one."""
    reports = [json.loads(p.read_text()) for p in sorted((ROOT / "docs").glob("bench-gpu*.json"))]
    dated = sorted((r for r in reports if "date" in r), key=lambda r: r["date"])
    if not dated:
        return None
    rows = dated[-1]["models"]
    row = next((r for r in rows if "large" in r["model"]), rows[-1])
    return row.get("served_env")


def test_the_image_serves_what_the_newest_gpu_bench_chose():
    """Precision and CUDA graph are decisions with numbers (tools/bench_gpu.py): cog.yaml sets what the
    newest GPU report chose, and nothing but the defaults (fp32, no graph) before any report chose."""
    from tools.bench_gpu import SERVING_ENV

    chosen = newest_served_env() or {"SAM2ENC_PRECISION": "fp32", "SAM2ENC_CUDA_GRAPH": "0"}
    environment = image_environment()
    image = {name: environment.get(name, default) for name, default in zip(SERVING_ENV, ("fp32", "0"))}
    assert image == chosen, "set cog.yaml's build.environment to the newest docs/bench-gpu*.json served_env"


def test_setup_fails_naming_the_cuda_libraries_when_the_image_has_no_usable_gpu(
    serve_python, models_dir, tmp_path
):
    log = tmp_path / "server.log"
    proc, url = launch(models_dir, python=serve_python, env=image_environment(), log=log)
    try:
        health = wait_for_setup(proc, url)
    finally:
        proc.terminate()
        proc.wait(10)
    text = log.read_text() + json.dumps(health)
    assert health["status"] in ("SETUP_FAILED", "EXITED"), health
    cuda_major = str(COG_YAML["build"]["cuda"]).split(".")[0]
    assert "device='cuda' was requested but the CUDA provider failed to load" in text, text[-3000:]
    assert f"CUDA {cuda_major}." in text and f"libcudart.so.{cuda_major}" in text, text[-3000:]


@pytest.fixture(scope="module")
def auto_server(serve_python, models_dir, tmp_path_factory):
    scratch = tmp_path_factory.mktemp("serve-auto")
    (scratch / "sitecustomize.py").write_text(IMPORT_GUARD)
    imports = scratch / "imports.log"
    env = {"SAM2ENC_DEVICE": "auto", "PYTHONPATH": str(scratch), "SAM2ENC_IMPORT_LOG": str(imports)}
    proc, url = launch(models_dir, python=serve_python, env=env, log=scratch / "server.log")
    health = wait_for_setup(proc, url)
    assert health["status"] == "READY", (scratch / "server.log").read_text()[-3000:]
    yield url, imports, scratch / "server.log"
    proc.terminate()
    proc.wait(10)


def test_auto_serves_a_real_photo_on_the_cpu_without_torch(auto_server, photos, encoder):
    url, imports, log = auto_server
    from tests.test_server import data_uri, post

    status, body = post(url, {"input": {"image": data_uri(photos["chelsea_exif6"])}})
    assert status == 200 and body["status"] == "succeeded", body.get("error")
    files = []
    for uri in body["output"]:
        with urllib.request.urlopen(uri) as response:  # data: URIs, as a local `cog predict` gets them
            files.append(response.read())
    manifest, embedding = sorted(files, key=len)  # data: URIs carry no file name
    served = parse_bundle(json.loads(manifest), embedding)
    reference = encode(photos["chelsea_exif6"], encoder)
    for name, value in reference.features.items():
        np.testing.assert_array_equal(served.features[name], value, err_msg=name)
    assert not imports.exists(), f"the serving path tried to import {imports.read_text()}"
    assert "CPUExecutionProvider" in log.read_text()
