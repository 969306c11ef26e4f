"""`sam2enc encode --remote`: a folder of photos on Replicate (the schema-checked stand-in running the real
predictor), N predictions in flight, verified bundles written whole, failures named, reruns that skip
what is done (and only that: the same photo's bytes, the same model), Ctrl+C and SIGTERM that cancel,
a user's own folder that is never touched, and a token that is never printed.

The stand-in's encodes are computed once per photo (module fixture) and its predictions are time-based
(``duration``), so what is measured is the client's scheduling, not the shared CPU. Cost: five encodes,
then about 10 s of subprocess runs.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sam2enc.bundle import EMBEDDING_FILE, MANIFEST_FILE, photo_sha256, read_bundle
from sam2enc.errors import Sam2EncError
from sam2enc.remote import Job, Progress, plan
from tests.conftest import ROOT, skimage_data
from tests.replicate_standin import ReplicateStandIn, checked_api_fixture, standin_fixture

pytestmark = pytest.mark.server

TOKEN = "r8_batch_secret_token_0123456789"
CREATE = ("POST", "/v1/predictions")


standin = standin_fixture(TOKEN)


@pytest.fixture(scope="module")
def shoot(tmp_path_factory, photos, standin) -> Path:
    """A folder of six photos, one of which the model refuses (a text file named .jpg); the stand-in
    has already encoded the five good ones."""
    folder = tmp_path_factory.mktemp("shoot")
    sources = [photos["astronaut"], photos["coffee"], photos["rocket"], photos["chelsea_exif6"]]
    for source in [*sources, skimage_data() / "camera.png"]:
        shutil.copy(source, folder / source.name)
        standin.encode(source.read_bytes())
    (folder / "broken.jpg").write_text("not a photo, but the model only finds out on the GPU")
    return folder


api = checked_api_fixture()


def cli(api: ReplicateStandIn, *args: object, token: str | None = TOKEN) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sam2enc", "encode", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment(api, token),
        timeout=120,
    )


def environment(api: ReplicateStandIn, token: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLICATE_")}
    env["REPLICATE_BASE_URL"] = api.url
    if token:
        env["REPLICATE_API_TOKEN"] = token
    return env


def creates(api: ReplicateStandIn, before: int = 0) -> int:
    return api.requests[before:].count(CREATE)


def test_a_folder_is_encoded_three_at_a_time_and_a_rerun_skips_what_is_done(api, shoot, tmp_path):
    photos = sorted(shoot.iterdir())
    out = tmp_path / "bundles"
    api.duration = 1.0
    result = cli(api, "--remote", "me/sam2enc", *photos, "--out", out, "--concurrency", 3)
    assert result.returncode == 1, result.stderr
    assert api.max_in_flight in (2, 3), f"{api.max_in_flight} predictions were in flight at once"
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(shoot / "broken.jpg") in errors[0], result.stderr
    assert "not a supported image" in errors[0]
    written = sorted(p.name for p in out.iterdir())
    assert written == ["astronaut", "camera", "chelsea_exif6", "coffee", "rocket"], "nothing half-written"
    for photo in photos:
        if photo.name == "broken.jpg":
            continue
        expected = api.encode(photo.read_bytes())[EMBEDDING_FILE]  # the real predictor's embedding
        assert read_bundle(out / photo.stem).to_bytes() == expected, photo.name
    assert "\r" not in result.stderr, "stderr is not a terminal: plain lines"
    assert any(line.startswith("6/6: 5 done, 1 failed") for line in result.stderr.splitlines())

    (out / "rocket" / EMBEDDING_FILE).write_bytes(b"truncated")  # a damaged bundle is encoded again
    before = len(api.requests)
    again = cli(api, "--remote", "me/sam2enc", *photos, "--out", out, "--concurrency", 3)
    assert again.returncode == 1 and creates(api, before) == 2, "broken.jpg again, rocket repaired"
    assert again.stdout.count("already there and verified: skipped") == 4
    assert read_bundle(out / "rocket").to_bytes() == api.encode(photos[-1].read_bytes())[EMBEDDING_FILE]
    before = len(api.requests)
    third = cli(api, "--remote", "me/sam2enc", *photos, "--out", out)
    assert third.returncode == 1 and creates(api, before) == 1
    for run in (result, again, third):
        assert TOKEN not in run.stdout + run.stderr


def test_concurrency_one_runs_one_prediction_at_a_time(api, shoot, tmp_path):
    photos = [shoot / "rocket.jpg", shoot / "coffee.png"]
    api.duration = 0.5
    before = len(api.requests)
    result = cli(api, "--remote", "me/sam2enc", *photos, "--out", tmp_path, "--concurrency", 1)
    assert result.returncode == 0, result.stderr
    assert api.max_in_flight == 1 and creates(api, before) == 2


def start_two_at_a_time(api: ReplicateStandIn, photos: list[Path], out: Path) -> subprocess.Popen:
    """`sam2enc encode --remote` over ``photos``, two predictions in flight, left running."""
    args = ["--remote", "me/sam2enc", *map(str, photos), "--out", str(out), "--concurrency", "2"]
    return subprocess.Popen(
        [sys.executable, "-m", "sam2enc", "encode", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=environment(api, TOKEN),
    )


def wait_for(condition, proc: subprocess.Popen, failure: str, seconds: float = 30) -> None:
    """Until ``condition()`` holds (a state, never a fixed time), while ``proc`` still runs."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline and proc.poll() is None, failure
        time.sleep(0.05)


@pytest.mark.parametrize(
    "signum, status, said",
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated (SIGTERM)")],
    ids=["ctrl-c", "sigterm"],
)
def test_a_signal_cancels_every_prediction_in_flight(api, shoot, tmp_path, signum, status, said):
    """Ctrl+C, and SIGTERM as `timeout`, `docker stop` and CI runners send it: every billed prediction
    in flight is canceled, the exit status is 128 + the signal."""
    api.delay, api.wait_scale = 30.0, 0.05  # queued for long; the 10 s sync window lasts 0.5 s
    before = len(api.requests)
    photos = [shoot / "rocket.jpg", shoot / "coffee.png", shoot / "astronaut.png"]
    proc = start_two_at_a_time(api, photos, tmp_path)
    try:
        polls = lambda: sum(m == "GET" and "/predictions/" in p for m, p in api.requests[before:])  # noqa: E731
        wait_for(lambda: polls() >= 2, proc, "two predictions never got polled")
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == status, stderr
    created = [pid for pid in list(api.predictions)[-2:]]
    cancels = {p for m, p in api.requests[before:] if m == "POST" and p.endswith("/cancel")}
    assert cancels == {f"/v1/predictions/{pid}/cancel" for pid in created}
    assert all(api.predictions[pid]["status"] == "canceled" for pid in created)
    assert creates(api, before) == 2, "the third photo is never started"
    assert f"{said}: canceling 2 prediction(s) in flight" in stderr
    assert list(tmp_path.iterdir()) == [], "nothing half-written"
    assert TOKEN not in stdout + stderr


def test_the_main_thread_cancels_at_once_while_every_worker_is_stuck_in_a_poll(api, shoot, tmp_path):
    """Each worker would cancel its own prediction once its poll returns; the interrupt must not wait for
    that: its cancels reach Replicate while both polls are still held (a slow network)."""
    api.delay, api.wait_scale, api.poll_hold = 30.0, 0.05, 4.0
    before, cancels = len(api.requests), len(api.cancels_while_held)
    proc = start_two_at_a_time(api, [shoot / "rocket.jpg", shoot / "coffee.png"], tmp_path)
    try:
        wait_for(lambda: api.polls_held >= 2, proc, "two polls were never held")
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
        api.poll_hold = 0.0
    assert proc.returncode == 143, stderr
    assert creates(api, before) == 2
    seen = api.cancels_while_held[cancels:]
    assert seen[:2] == [2, 2], f"the cancels arrived with {seen} polls held"


def test_a_users_folder_named_like_a_photo_is_never_touched(api, shoot, tmp_path):
    """`--out album` beside album/holiday.jpg: album/holiday/ is the user's, not a bundle to replace."""
    album = tmp_path / "album"
    (album / "holiday").mkdir(parents=True)
    shutil.copy(shoot / "rocket.jpg", album / "holiday.jpg")
    shutil.copy(shoot / "coffee.png", album / "coffee.png")
    (album / "holiday" / "notes.txt").write_text("day one")
    (album / "holiday" / "beach.jpg").write_bytes(b"the user's photo")
    before = len(api.requests)
    result = cli(api, "--remote", "me/sam2enc", album / "holiday.jpg", album / "coffee.png", "--out", album)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: {album / 'holiday.jpg'}: {album / 'holiday'} holds files that are not a bundle's "
        "(beach.jpg, notes.txt): it was left as it is; write the bundle somewhere else"
    ]
    assert sorted(p.name for p in (album / "holiday").iterdir()) == ["beach.jpg", "notes.txt"]
    assert (album / "holiday" / "notes.txt").read_text() == "day one"
    assert (album / "holiday" / "beach.jpg").read_bytes() == b"the user's photo"
    assert creates(api, before) == 1, "no prediction is paid for a photo that cannot be written"
    assert read_bundle(album / "coffee").source_sha256 == photo_sha256((album / "coffee.png").read_bytes())
    assert sorted(p.name for p in album.iterdir()) == ["coffee", "coffee.png", "holiday", "holiday.jpg"]


def test_a_changed_photo_or_another_model_is_encoded_again(api, shoot, tmp_path):
    photo, out = tmp_path / "a.jpg", tmp_path / "bundles"
    shutil.copy(shoot / "rocket.jpg", photo)
    assert cli(api, "--remote", "me/sam2enc", photo, "--out", out).returncode == 0
    manifest = json.loads((out / "a" / MANIFEST_FILE).read_text())
    assert manifest["source"] == {"sha256": photo_sha256(photo.read_bytes())}
    assert manifest["replicate"]["model"] == "me/sam2enc"
    before = len(api.requests)
    assert cli(api, "--remote", "me/sam2enc", photo, "--out", out).returncode == 0
    assert creates(api, before) == 0, "same bytes, same model: skipped"

    shutil.copy(shoot / "coffee.png", photo)  # another photo under the same name
    before = len(api.requests)
    again = cli(api, "--remote", "me/sam2enc", photo, "--out", out)
    assert again.returncode == 0 and creates(api, before) == 1, again.stderr
    assert read_bundle(out / "a").to_bytes() == api.encode(photo.read_bytes())[EMBEDDING_FILE]

    before = len(api.requests)
    other = cli(api, "--remote", "me/sam2enc:abc", photo, "--out", out)  # another version, asked by id
    assert other.returncode == 0 and creates(api, before) == 1, other.stderr
    assert read_bundle(out / "a").replicate == {"model": "me/sam2enc", "version": "abc"}

    manifest = json.loads((out / "a" / MANIFEST_FILE).read_text())
    del manifest["source"], manifest["replicate"]  # a bundle written before these fields: size decides
    (out / "a" / MANIFEST_FILE).write_text(json.dumps(manifest))
    before = len(api.requests)
    assert cli(api, "--remote", "me/sam2enc", photo, "--out", out).returncode == 0
    assert creates(api, before) == 0, "an older bundle of a photo of the same size is kept"
    shutil.copy(shoot / "rocket.jpg", photo)  # another size
    assert cli(api, "--remote", "me/sam2enc", photo, "--out", out).returncode == 0
    assert creates(api, before) == 1


def test_without_a_token_it_says_so_in_one_sentence(api, shoot, tmp_path):
    before = len(api.requests)
    result = cli(api, "--remote", "me/sam2enc", shoot / "rocket.jpg", "--out", tmp_path, token=None)
    assert result.returncode == 2
    assert result.stderr == "error: no API token: set REPLICATE_API_TOKEN to a Replicate API token\n"
    assert api.requests[before:] == []


def test_a_model_that_cannot_run_stops_before_any_upload(api, shoot, tmp_path):
    before = len(api.requests)
    result = cli(api, "--remote", "me/empty", shoot / "rocket.jpg", "--out", tmp_path)
    assert result.returncode == 2 and "me/empty has no version to run yet" in result.stderr
    assert ("POST", "/v1/files") not in api.requests[before:]


def test_clashing_stems_get_their_extension_and_identical_names_are_refused(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    jobs = plan([a / "photo.jpg", a / "photo.png", a / "other.jpg", a / "other.jpg"], tmp_path / "out")
    assert [(j.image.name, j.out_dir.name) for j in jobs] == [
        ("photo.jpg", "photo-jpg"),
        ("photo.png", "photo-png"),
        ("other.jpg", "other"),
    ]
    with pytest.raises(Sam2EncError, match=r"would both be written to .*photo-jpg"):
        plan([a / "photo.jpg", b / "photo.jpg", a / "photo.png"], tmp_path / "out")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_bar_is_redrawn_in_place_and_lines_go_above_it(tmp_path):
    out, err = io.StringIO(), Terminal()
    progress = Progress(2, out, err, secret=TOKEN)
    progress.done(Job(tmp_path / "a.jpg", tmp_path / "out" / "a"), 1.0)
    progress.failed(Job(tmp_path / "b.jpg", tmp_path / "out" / "b"), ValueError(f"no\nluck {TOKEN}"))
    progress.summary()
    assert "\r\x1b[K[" + "#" * 12 + "-" * 12 + "] 1/2: 1 done, 0 failed" in err.getvalue()
    assert f"error: {tmp_path / 'b.jpg'}: no luck <token>\n" in err.getvalue()
    assert err.getvalue().endswith(": " + str(tmp_path / "b.jpg") + "\n"), "the bar is gone at the end"
    assert TOKEN not in out.getvalue() + err.getvalue()
