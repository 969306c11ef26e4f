"""The Gradio Space (`python -m sam2enc.space`) and `sam2enc encode --space`, on 127.0.0.1.

The Space runs as the hidden check runs it, a subprocess over the random-weight tiny export; its bundle
must be `sam2enc encode`'s for the same photo, byte for byte (both files). Then: bad input is the one
sentence predict() says, two requests at once are encoded side by side (one photo's decode while the
other holds the encoder) and each gets its own bundle, `encode --space` writes that bundle and a rerun
skips it (asking the Space nothing), a signal cancels what is in flight, the token goes only to
Hugging Face, and the folder `make space` stages serves the same bundle.

Cost on 2 shared cores: two Space start-ups (~10 s each), about eight tiny encodes, a few CLI runs.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import requires
from pathlib import Path
from typing import ClassVar

import pytest
from packaging.requirements import Requirement

from sam2enc.bundle import EMBEDDING_FILE, MANIFEST_FILE
from sam2enc.space import CONCURRENCY, concurrency_for
from sam2enc.space_client import bundle_from_space, encode_space, token_goes_to
from tests.cogserver import free_port
from tests.conftest import ROOT

pytestmark = pytest.mark.server

TOKEN = "hf_space_secret_token_0123456789"
BAD = "the uploaded image is not a supported image: it is a text file"
GOOD = ("rocket", "chelsea_exif6")  # a JPEG, and a phone JPEG stored sideways (EXIF orientation 6)


class SpaceServer:
    """A Space started as a subprocess; its log (stdout + stderr) is a file the tests read."""

    def __init__(self, command: list[str], log: Path, cwd: Path = ROOT, env: dict | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        environment = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
        environment["GRADIO_TEMP_DIR"] = str(log.parent / "gradio")  # uploads and served files
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [*command, "--port", str(self.port)], cwd=cwd, env=environment, stdout=out, stderr=out
            )
        deadline = time.monotonic() + 240
        while True:
            assert self.proc.poll() is None, f"the Space exited:\n{self.text()}"
            assert time.monotonic() < deadline, f"the Space did not start:\n{self.text()}"
            try:
                with urllib.request.urlopen(f"{self.url}/config", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.3)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def encodes(self) -> list[str]:
        """The service's log line of each encode, in order."""
        return [line for line in self.text().splitlines() if "encoded on" in line]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def space(models_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("space") / "space.log"
    server = SpaceServer([sys.executable, "-m", "sam2enc.space", "--models-dir", str(models_dir)], log)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def shoot(photos, tmp_path_factory) -> Path:
    """The good photos, plus a text file named like a photo."""
    folder = tmp_path_factory.mktemp("shoot")
    for name in GOOD:
        shutil.copy(photos[name], folder / photos[name].name)
    (folder / "broken.jpg").write_text("not a photo, but named like one")
    return folder


@pytest.fixture(scope="module")
def reference(models_dir, shoot, tmp_path_factory) -> dict[str, dict[str, bytes]]:
    """`sam2enc encode` of the good photos with the same models: {stem: {file name: bytes}}."""
    out = tmp_path_factory.mktemp("reference")
    photos = [str(shoot / f"{name}.jpg") for name in GOOD]
    flags = ["--out", str(out), "--models-dir", str(models_dir), "--device", "cpu"]
    result = subprocess.run(
        [sys.executable, "-m", "sam2enc", "encode", *photos, *flags],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return {name: files(out / name) for name in GOOD}


def files(directory: Path) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in (EMBEDDING_FILE, MANIFEST_FILE)}


def client(space: SpaceServer, downloads: Path):
    from gradio_client import Client

    return Client(space.url, verbose=False, download_files=str(downloads), analytics_enabled=False)


def cli(*args: object, token: str | None = TOKEN) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HF_TOKEN"}
    env["GRADIO_ANALYTICS_ENABLED"] = "False"
    if token:
        env["HF_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "sam2enc", "encode", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )


def test_the_spaces_bundle_is_sam2enc_encodes_byte_for_byte(space, shoot, reference, tmp_path):
    """The hidden check: gradio_client's predict(handle_file(photo), api_name="/predict")."""
    from gradio_client import handle_file

    result = client(space, tmp_path).predict(handle_file(str(shoot / "rocket.jpg")), api_name="/predict")
    assert [Path(p).name for p in result] == [EMBEDDING_FILE, MANIFEST_FILE]
    assert {Path(p).name: Path(p).read_bytes() for p in result} == reference["rocket"]
    assert bundle_from_space(result).to_bytes() == reference["rocket"][EMBEDDING_FILE]
    bundle = encode_space(shoot / "chelsea_exif6.jpg", space.url)  # the one-photo Python call
    assert bundle.to_bytes() == reference["chelsea_exif6"][EMBEDDING_FILE]
    assert (bundle.original_width, bundle.original_height) == (451, 300), "EXIF orientation applied"


@pytest.mark.parametrize("name", ["text file", "truncated png", "empty file", "decompression bomb"])
def test_bad_input_is_the_sentence_predict_says(space, tmp_path, name):
    """As on Replicate (tests/test_server.py): one sentence naming the upload, no traceback anywhere."""
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    from tests.test_image_inputs import REJECTED

    case = next(c for c in REJECTED if c.name == name)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(case.make())
    before = space.text()
    with pytest.raises(AppError) as raised:
        client(space, tmp_path / "downloads").predict(handle_file(str(photo)), api_name="/predict")
    message = str(raised.value)
    assert message.startswith("the uploaded image ") and case.expect in message, message
    assert "\n" not in message and "Traceback" not in message, message
    assert "Traceback" not in space.text()[len(before) :], "bad input is not an error of the Space"


def test_two_requests_at_once_are_encoded_side_by_side(space, shoot, reference, tmp_path):
    """The CPU queue takes two at once: the second photo is decoded while the first holds the encoder
    (its `wait` is the rest of the first's encode), and neither gets the other's bundle."""
    from gradio_client import handle_file

    clients = {name: client(space, tmp_path / name) for name in GOOD}
    before = len(space.encodes())
    start = threading.Barrier(len(GOOD))
    results: dict[str, object] = {}

    def predict(name: str) -> None:
        start.wait()
        results[name] = clients[name].predict(handle_file(str(shoot / f"{name}.jpg")), api_name="/predict")

    threads = [threading.Thread(target=predict, args=(name,)) for name in GOOD]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    for name in GOOD:
        assert {Path(p).name: Path(p).read_bytes() for p in results[name]} == reference[name], name
    lines = space.encodes()[before:]
    waits = [int(re.search(r"wait (\d+) ms", line).group(1)) for line in lines]
    assert len(waits) == 2 and max(waits) >= 300, f"not encoded side by side: {lines}"


def test_the_queue_is_sized_for_the_hardware(space):
    """CUDA: predict.py's concurrency (one photo's decode overlaps another's encoder); the CPU: 2."""
    tree = ast.parse((ROOT / "predict.py").read_text())
    cog = next(
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "MAX_CONCURRENCY"
    )
    assert concurrency_for("CUDAExecutionProvider") == cog == CONCURRENCY["cuda"]
    assert concurrency_for("CPUExecutionProvider") == CONCURRENCY["cpu"] == 2
    assert "queue: 2 encodes at once, 16 waiting at most" in space.text()


def test_encode_space_writes_that_bundle_and_a_rerun_skips_it(space, shoot, reference, tmp_path):
    out = tmp_path / "bundles"
    photos = sorted(shoot.iterdir())
    result = cli("--space", space.url, *photos, "--out", out)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {shoot / 'broken.jpg'}: {BAD}"]
    assert sorted(p.name for p in out.iterdir()) == sorted(GOOD), "nothing half-written"
    for name in GOOD:
        assert files(out / name) == reference[name], f"{name}: not the bundle sam2enc encode writes"
    assert TOKEN not in result.stdout + result.stderr

    before = len(space.encodes())
    good = [shoot / f"{name}.jpg" for name in GOOD]
    again = cli("--space", space.url, *good, "--out", out)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already there and verified: skipped") == 2
    assert len(space.encodes()) == before, "a rerun encodes nothing (it only asks for the model)"

    manifest = json.loads((out / "rocket" / MANIFEST_FILE).read_text())
    manifest["model"]["checkpointSha256"] = "0" * 64  # a bundle of another model: encoded again
    (out / "rocket" / MANIFEST_FILE).write_text(json.dumps(manifest))
    third = cli("--space", space.url, *good, "--out", out)
    assert third.returncode == 0 and len(space.encodes()) == before + 1, third.stderr
    assert files(out / "rocket") == reference["rocket"]


@pytest.mark.parametrize(
    "signum, status, said",
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated (SIGTERM)")],
    ids=["ctrl-c", "sigterm"],
)
def test_a_signal_cancels_every_request_in_flight(space, shoot, tmp_path, signum, status, said):
    photos = [shoot / "rocket.jpg", shoot / "chelsea_exif6.jpg", shoot / "broken.jpg"]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    args = ["--space", space.url, *map(str, photos), "--out", str(tmp_path), "--concurrency", "2", "-v"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sam2enc", "encode", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    try:
        lines = []
        while sum(": sent to " in line for line in lines) < 2:
            line = proc.stderr.readline()
            assert line, f"two requests were never sent: {''.join(lines)}"
            lines.append(line)
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == status, "".join(lines) + stderr
    assert f"{said}: canceling 2 prediction(s) in flight" in stderr
    assert str(photos[2]) not in "".join(lines) + stderr, "the third photo is never sent"
    assert list(tmp_path.iterdir()) == [], "nothing half-written"


class Recorder(BaseHTTPRequestHandler):
    """Anything but a Space: answers 404 and keeps every request's headers."""

    seen: ClassVar[list[str]] = []

    def do_GET(self):
        Recorder.seen.append(str(self.headers))
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_token_goes_only_to_hugging_face(shoot, tmp_path):
    """gradio_client alone would send $HF_TOKEN to any URL: sam2enc gives it only to Hugging Face."""
    assert token_goes_to("you/sam2enc") and token_goes_to("https://you-sam2enc.hf.space")
    assert token_goes_to("https://huggingface.co/spaces/you/sam2enc")
    for url in ("http://you-sam2enc.hf.space", "https://hf.space.example.com", "http://127.0.0.1:7860"):
        assert not token_goes_to(url), url
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = cli("--space", url, shoot / "rocket.jpg", "--out", tmp_path / "out")
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: could not open the Space {url}"), result.stderr
    assert Recorder.seen, "the client never asked"
    assert not any(TOKEN in headers for headers in Recorder.seen), Recorder.seen
    assert TOKEN not in result.stdout + result.stderr
    assert not (tmp_path / "out").exists()


def test_the_space_folder_pins_what_the_project_tests(tmp_path):
    """space/: README's sdk_version is the gradio the suite runs; requirements.txt pins the suite's
    onnxruntime and NumPy, and a Pillow that gradio accepts."""
    front = (ROOT / "space" / "README.md").read_text().split("---")[1]
    settings = dict(line.split(": ", 1) for line in front.strip().splitlines())
    assert settings["sdk"] == "gradio" and settings["app_file"] == "app.py"
    gradio = re.search(r"gradio==([\d.]+)", (ROOT / "Makefile").read_text()).group(1)
    assert settings["sdk_version"] == gradio
    assert f'"gradio=={gradio}"' in (ROOT / "pyproject.toml").read_text()
    dev = pins(ROOT / "requirements-dev.txt")
    space = pins(ROOT / "space" / "requirements.txt")
    assert space["onnxruntime"] == dev["onnxruntime"] and space["numpy"] == dev["numpy"]
    cap = next(Requirement(r) for r in requires("gradio") if r.startswith("pillow"))
    assert space["pillow"] in cap.specifier, f"gradio {gradio} wants pillow {cap.specifier}"


def pins(path: Path) -> dict[str, str]:
    found = re.findall(r"^([A-Za-z0-9_.-]+)==([^\s#]+)", path.read_text(), re.MULTILINE)
    return {name.lower(): version for name, version in found}


def test_the_staged_space_serves_the_same_bundle(models_dir, shoot, reference, tmp_path):
    """`make space`'s folder, run as Hugging Face runs it (python app.py), with its own copy of sam2enc
    and the encoder in weights/ beside it."""
    from tools.space_build import stage

    with pytest.raises(SystemExit, match="random weights"):
        stage(models_dir, tmp_path / "refused")
    staged = stage(models_dir, tmp_path / "space", random_weights=True)
    assert (staged / "weights" / "encoder.onnx").is_file() and not (staged / "sam2enc" / "web").exists()
    env = {"SAM2ENC_MODELS_DIR": "", "PYTHONPATH": ""}
    server = SpaceServer([sys.executable, "app.py"], tmp_path / "staged.log", cwd=staged, env=env)
    try:
        from gradio_client import handle_file

        photo = handle_file(str(shoot / "rocket.jpg"))
        result = client(server, tmp_path / "downloads").predict(photo, api_name="/predict")
        assert {Path(p).name: Path(p).read_bytes() for p in result} == reference["rocket"]
        assert f"sam2enc from {staged / 'sam2enc'}" in server.text(), "the staged copy serves"
    finally:
        server.stop()


@pytest.mark.parametrize(
    "module, args, sentence",
    [
        ("sam2enc.space", ["--port", "9"], "error: the Space needs gradio, which is not installed: "),
        (
            "sam2enc",
            ["encode", "--space", "http://127.0.0.1:9", "x.jpg", "--out", "out"],
            "error: --space needs ",
        ),
    ],
    ids=["space", "encode --space"],
)
def test_without_gradio_each_command_says_what_to_install(module, args, sentence, models_dir, tmp_path):
    from tests.test_newcomer import BLOCKED

    code = BLOCKED.format(blocked={"gradio", "gradio_client"}, module=module, args=args)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SAM2ENC_MODELS_DIR": str(models_dir)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(sentence) and "pip install '.[space]'" in lines[0], lines
    assert list(tmp_path.iterdir()) == [], "nothing written"
