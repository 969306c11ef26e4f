"""``sam2enc encode --remote MODEL IMAGES... --out DIR``: many photos on Replicate, N predictions in flight.

Replicate's autoscaling is the distributed engine: each worker thread runs one photo at a time through
``RemoteModel.encode`` (upload, create in sync mode, poll, fetch, verify), so ``concurrency`` is the
number of predictions in flight. Every good bundle is written whole to ``OUT/<stem>/`` (staged, then
renamed into place); a folder there that holds anything but a bundle's two files is the user's and is
never touched: that photo is refused in one line. A rerun skips photos whose bundle is already there,
verifies, was made from the same bytes (the manifest's ``source.sha256``; the upright size for bundles
older than it) and, where it records one, by the model asked for; so it makes no prediction for them.
Failures are named one per line and make the exit status 1; Ctrl+C (SIGINT) and SIGTERM (``timeout``,
``docker stop``, a CI runner) send a cancel for every prediction in flight and exit 130 and 143. The
token comes from ``$REPLICATE_API_TOKEN`` and is never printed: every line written is scrubbed of it.

The batch itself (``encode_batch``: the folder rules, resume, progress, signals) knows nothing of
Replicate: it drives a ``Backend``, here ``Replicate``; ``sam2enc encode --space`` drives a Gradio Space
through the same batch (sam2enc/space_client.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TextIO

from .bundle import MANIFEST_FILE, Bundle, check_writable, photo_sha256, read_bundle, write_bundle
from .client import TIMEOUT, RemoteModel
from .errors import BundleError, ImageError, RemoteError, Sam2EncError, Terminated
from .image import load_image

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 4
MAX_CONCURRENCY = 64
# Sync window per create: long enough for a warm prediction (a second or two), short enough that
# Ctrl+C learns the id of a prediction still being created, to cancel it, within this many seconds.
BATCH_WAIT = 10
EXIT_FAILED = 1
EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal, as shells report it


@dataclass(frozen=True)
class Job:
    image: Path
    out_dir: Path


class Backend(Protocol):
    """What a batch encodes with. ``encode_into`` is called from several threads at once."""

    secret: str  # scrubbed from every line written (the API token; "" for none)

    def prepare(self) -> None:
        """Called once, before the first photo is sent: a model or Space that cannot run raises its
        one-sentence ``Sam2EncError`` here, before any upload."""

    def other_model(self, bundle: Bundle) -> str | None:
        """The model that made ``bundle`` (already known to be of the same photo) where it is not the one
        this batch asks for, which encodes the photo again; None where it is (or cannot be told)."""

    def encode_into(self, job: Job, stop: threading.Event, created: Callable[[str], None]) -> None:
        """Encode ``job.image`` and write its verified bundle whole to ``job.out_dir``. ``created`` hears
        a handle for ``cancel`` as soon as there is one; once ``stop`` is set, give up (raise)."""

    def cancel(self, handle: str) -> None:
        """Best effort: stop the work ``handle`` names (a failure is logged, never raised)."""


class Replicate:
    """The ``Backend`` of ``encode --remote``: predictions on Replicate, bundles stamped with the model."""

    def __init__(self, model: str, token: str) -> None:
        self.model, self.secret = model, token
        self.remote = RemoteModel(model, api_token=token, timeout=TIMEOUT, wait=BATCH_WAIT)

    def prepare(self) -> None:
        self.remote.resolve()  # a model that cannot run is one error, before any upload

    def other_model(self, bundle: Bundle) -> str | None:
        if bundle.replicate and not same_model(bundle.replicate, self.model):
            return str(bundle.replicate.get("model"))
        return None

    def encode_into(self, job: Job, stop: threading.Event, created: Callable[[str], None]) -> None:
        bundle = self.remote.encode(job.image, stop, created)
        _, target = self.remote.resolve()
        write_bundle(stamped(bundle, job.image, self.model, target), job.out_dir)

    def cancel(self, handle: str) -> None:
        self.remote.cancel(handle)


def encode_on_replicate(
    images: list[Path],
    model: str,
    out: Path,
    concurrency: int = DEFAULT_CONCURRENCY,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Encode ``images`` on Replicate into ``out/<stem>/`` each; the exit status (0, 1 or 130).

    Setup problems (no token, a model that cannot run, clashing names, a bad ``concurrency``) raise a
    one-sentence ``Sam2EncError`` before any photo is uploaded."""
    check_concurrency(concurrency)
    token = os.environ.get("REPLICATE_API_TOKEN", "").strip()
    if not token:
        raise RemoteError("no API token: set REPLICATE_API_TOKEN to a Replicate API token")
    return encode_batch(images, out, Replicate(model, token), concurrency, stdout, stderr)


def check_concurrency(concurrency: int) -> None:
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise Sam2EncError(f"--concurrency must be between 1 and {MAX_CONCURRENCY}, got {concurrency}")


def encode_batch(
    images: list[Path],
    out: Path,
    backend: Backend,
    concurrency: int = DEFAULT_CONCURRENCY,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Encode ``images`` with ``backend`` into ``out/<stem>/`` each; the exit status (0, 1, 130 or 143).

    A folder there that is not a bundle's is refused (that photo fails, the others go on); a bundle that
    is already there, verifies, and is of the same photo and the model asked for is skipped."""
    check_concurrency(concurrency)
    jobs = plan(images, out)
    progress = Progress(len(jobs), stdout or sys.stdout, stderr or sys.stderr, secret=backend.secret)
    todo, refused = [], 0
    for job in jobs:
        try:
            check_writable(job.out_dir)
        except BundleError as exc:  # the user's own folder: never written into, never replaced
            refused += 1
            progress.failed(job, exc)
            continue
        if current(job, backend):
            progress.skipped(job)
        else:
            todo.append(job)
    status = 0
    if todo:
        backend.prepare()
        status = Batch(backend, todo, concurrency, progress).run()
    progress.summary()
    return EXIT_FAILED if refused and status == 0 else status


def plan(images: list[Path], out: Path) -> list[Job]:
    """One ``OUT/<name>/`` per photo: its stem, or ``<stem>-<extension>`` where stems clash
    (photo.jpg, photo.png); the same file named twice is encoded once; identical names refused."""
    unique: dict[Path, Path] = {}
    for image in images:
        unique.setdefault(image.resolve(), image)
    stems: dict[str, int] = {}
    for image in unique.values():
        stems[image.stem] = stems.get(image.stem, 0) + 1
    taken: dict[str, Path] = {}
    jobs = []
    for image in unique.values():
        name = image.stem if stems[image.stem] == 1 else f"{image.stem}-{image.suffix.lstrip('.').lower()}"
        if name in taken:
            raise Sam2EncError(
                f"{taken[name]} and {image} would both be written to {out / name}: "
                "encode them into separate --out directories"
            )
        taken[name] = image
        jobs.append(Job(image, out / name))
    return jobs


def current(job: Job, backend: Backend) -> bool:
    """Does ``job.out_dir`` already hold this photo's bundle, whole, from the model asked for?

    Whole: it verifies against its own manifest. This photo: the manifest's ``source.sha256`` is the
    photo's bytes now (a bundle older than that field: the photo's upright size is the bundle's).
    The model: ``backend.other_model`` (Replicate: a bundle that records the Replicate model it came from,
    ``replicate``, is encoded again when the model asked for is another one, or pins another version)."""
    if not (job.out_dir / MANIFEST_FILE).is_file():
        return False
    try:
        bundle = read_bundle(job.out_dir)
        data = job.image.read_bytes()
    except (BundleError, OSError) as exc:
        log.info("%s will be encoded again: %s", job.out_dir, exc)
        return False
    if bundle.source_sha256 is not None:
        same_photo = bundle.source_sha256 == photo_sha256(data)
    else:
        try:
            image = load_image(data, job.image.name)
        except ImageError:
            return False  # the encode names what is wrong with it
        same_photo = (image.width, image.height) == (bundle.original_width, bundle.original_height)
    if not same_photo:
        log.info("%s will be encoded again: %s changed since its bundle was written", job.out_dir, job.image)
        return False
    if (other := backend.other_model(bundle)) is not None:
        log.info("%s will be encoded again: it was encoded by %s", job.out_dir, other)
        return False
    return True


def same_model(recorded: dict, asked: str) -> bool:
    """Is the model a bundle records (``{"model": ref, "version": id}``) the one ``asked`` names?
    ``owner/name`` must match by name; a version (``owner/name:v`` or a bare id) by version."""
    name, version = model_ref(asked)
    if name and recorded.get("model") and name != recorded["model"]:
        return False
    return not version or recorded.get("version") in (None, version)


def model_ref(ref: str) -> tuple[str | None, str | None]:
    """(owner/name, version) of ``owner/name:version``, ``owner/name`` or a bare version id."""
    ref = ref.strip()
    name, _, version = ref.rpartition(":")
    if name:
        return name, version
    return (ref, None) if "/" in ref else (None, ref)


def stamped(bundle: Bundle, image: Path, model: str, target: dict[str, str]) -> Bundle:
    """The bundle as it is written: recording the photo (a model older than ``source`` left it out)
    and the Replicate model asked for; a bundle that records another photo's bytes is refused."""
    digest = photo_sha256(image.read_bytes())
    if bundle.source_sha256 not in (None, digest):
        raise RemoteError(f"the model returned a bundle of other bytes than {image} (sha256 differs)")
    name, _ = model_ref(model)
    return dataclasses.replace(
        bundle, source_sha256=digest, replicate={"model": name, "version": target.get("version")}
    )


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within this block SIGTERM raises ``Terminated`` in the main thread, as SIGINT raises
    KeyboardInterrupt, so that both cancel what is in flight. Off the main thread: unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Batch:
    """Worker threads over a queue of jobs; the main thread counts results and handles Ctrl+C."""

    def __init__(self, backend: Backend, jobs: list[Job], concurrency: int, progress: Progress) -> None:
        self.backend = backend
        self.jobs: queue.Queue[Job] = queue.Queue()
        for job in jobs:
            self.jobs.put(job)
        self.total = len(jobs)
        self.workers = [threading.Thread(target=self._work, daemon=True) for _ in range(concurrency)]
        self.progress = progress
        self.results: queue.Queue[tuple[Job, Exception | None, float]] = queue.Queue()
        self.stop = threading.Event()
        self.in_flight: dict[Job, str | None] = {}  # job → prediction id, None while being created
        self.lock = threading.Lock()

    def run(self) -> int:
        failed = 0
        with sigterm_as_interrupt():
            for worker in self.workers:
                worker.start()
            try:
                for _ in range(self.total):
                    job, error, seconds = self._next_result()
                    if error is None:
                        self.progress.done(job, seconds)
                    else:
                        failed += 1
                        self.progress.failed(job, error)
            except KeyboardInterrupt:
                return self._interrupt(signal.SIGINT)
            except Terminated:
                return self._interrupt(signal.SIGTERM)
        return EXIT_FAILED if failed else 0

    def _next_result(self) -> tuple[Job, Exception | None, float]:
        while True:  # short waits: the bar's clock ticks, Ctrl+C is seen at once
            try:
                return self.results.get(timeout=0.1)
            except queue.Empty:
                self.progress.tick()

    def _work(self) -> None:
        while not self.stop.is_set():
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                return
            started = time.monotonic()
            with self.lock:
                self.in_flight[job] = None
            self.progress.tick(in_flight=len(self.in_flight))
            try:
                self.backend.encode_into(job, self.stop, functools.partial(self._created, job))
                error = None
            except Exception as exc:  # every failure, expected or not, is its photo's one line
                error = exc
            with self.lock:
                self.in_flight.pop(job, None)
            self.progress.tick(in_flight=len(self.in_flight))
            self.results.put((job, error, time.monotonic() - started))

    def _created(self, job: Job, pid: str) -> None:
        with self.lock:
            self.in_flight[job] = pid

    def _interrupt(self, signum: signal.Signals) -> int:
        """Cancel every prediction in flight; wait (a sync window at most) for those still being created
        to learn their ids and cancel themselves; a second signal leaves them to their deadline."""
        self.stop.set()
        with self.lock:
            known = [pid for pid in self.in_flight.values() if pid is not None]
        what = "interrupted" if signum == signal.SIGINT else "terminated (SIGTERM)"
        self.progress.line(f"{what}: canceling {len(known)} prediction(s) in flight", err=True)
        for pid in known:
            self.backend.cancel(pid)
        try:
            while any(worker.is_alive() for worker in self.workers):
                with self.lock:
                    pending = sum(pid is None for pid in self.in_flight.values())
                if pending:
                    self.progress.tick(note=f"waiting up to {BATCH_WAIT} s for {pending} being created")
                time.sleep(0.1)
        except (KeyboardInterrupt, Terminated):
            with self.lock:
                pending = sum(pid is None for pid in self.in_flight.values())
            self.progress.line(
                f"left {pending} prediction(s) being created to their Cancel-After deadline", err=True
            )
        return EXIT_SIGNAL[signum]


class Progress:
    """done / failed / elapsed on stderr: a bar redrawn in place on a terminal, plain lines otherwise.
    Every line is scrubbed of ``secret`` (the API token) before it is written."""

    BAR = 24

    def __init__(self, total: int, out: TextIO, err: TextIO, secret: str) -> None:
        self.total, self.out, self.err, self.secret = total, out, err, secret
        self.tty = bool(getattr(err, "isatty", lambda: False)())
        self.started = time.monotonic()
        self.count = {"done": 0, "skipped": 0, "failed": 0}
        self.failures: list[Path] = []
        self.in_flight = 0
        self.note = ""
        self.lock = threading.Lock()

    def skipped(self, job: Job) -> None:
        self.count["skipped"] += 1
        self.line(f"{job.image} -> {job.out_dir} (already there and verified: skipped)")

    def done(self, job: Job, seconds: float) -> None:
        self.count["done"] += 1
        self.line(f"{job.image} -> {job.out_dir} ({seconds:.1f} s)")
        self._status()

    def failed(self, job: Job, error: Exception) -> None:
        self.count["failed"] += 1
        self.failures.append(job.image)
        reason = " ".join(str(error).split()) or type(error).__name__
        self.line(f"error: {job.image}: {reason}", err=True)
        self._status()

    def tick(self, in_flight: int | None = None, note: str | None = None) -> None:
        if in_flight is not None:
            self.in_flight = in_flight
        if note is not None:
            self.note = note
        if self.tty:
            self._draw()

    def summary(self) -> None:
        done, skipped, failed = self.count["done"], self.count["skipped"], self.count["failed"]
        text = f"{done} encoded, {skipped} skipped, {failed} failed in {self._elapsed():.1f} s"
        if self.failures:
            text += ": " + ", ".join(str(f) for f in self.failures)
        self.line(text, err=bool(failed), last=True)

    def line(self, text: str, err: bool = False, last: bool = False) -> None:
        """A line above the bar (which is cleared first and redrawn after, unless ``last``)."""
        with self.lock:
            if self.tty:
                self.err.write("\r\x1b[K")
            stream = self.err if err else self.out
            stream.write(self._scrub(text) + "\n")
            stream.flush()
        if self.tty and not last:
            self._draw()

    def _status(self) -> None:
        if not self.tty:
            self.line(self._text(), err=True)

    def _text(self) -> str:
        finished = sum(self.count.values())
        text = (
            f"{finished}/{self.total}: {self.count['done']} done, {self.count['failed']} failed, "
            f"{self.count['skipped']} skipped, {self.in_flight} in flight, {self._elapsed():.1f} s"
        )
        return f"{text} ({self.note})" if self.note else text

    def _draw(self) -> None:
        with self.lock:
            finished = sum(self.count.values())
            filled = self.BAR * finished // max(1, self.total)
            bar = "#" * filled + "-" * (self.BAR - filled)
            self.err.write(f"\r\x1b[K[{bar}] {self._scrub(self._text())}")
            self.err.flush()

    def _elapsed(self) -> float:
        return time.monotonic() - self.started

    def _scrub(self, text: str) -> str:
        return text.replace(self.secret, "<token>") if self.secret else text
