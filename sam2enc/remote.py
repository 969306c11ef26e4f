"""``sam2enc encode --remote MODEL IMAGES... --out DIR``: many photos on Replicate, N predictions in flight.

Replicate's autoscaling is the distributed engine: each worker thread runs one photo at a time through
``RemoteModel.encode`` (upload, create in sync mode, poll, fetch, verify), so ``concurrency`` is the
number of predictions in flight. Every good bundle is written whole to ``OUT/<stem>/`` (staged, then
renamed into place); a rerun skips photos whose bundle is already there and verifies, so it makes no
prediction for them. Failures are named one per line and make the exit status 1; Ctrl+C sends a cancel
for every prediction in flight and exits 130. The token comes from ``$REPLICATE_API_TOKEN`` and is never
printed: every line written is scrubbed of it.
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import shutil
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from .bundle import MANIFEST_FILE, read_bundle, write_bundle
from .client import TIMEOUT, RemoteModel
from .errors import BundleError, RemoteError, Sam2EncError

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 4
MAX_CONCURRENCY = 64
# Sync window per create: long enough for a warm prediction (a second or two), short enough that
# Ctrl+C learns the id of a prediction still being created, to cancel it, within this many seconds.
BATCH_WAIT = 10
EXIT_FAILED, EXIT_INTERRUPTED = 1, 130


@dataclass(frozen=True)
class Job:
    image: Path
    out_dir: Path


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
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise Sam2EncError(f"--concurrency must be between 1 and {MAX_CONCURRENCY}, got {concurrency}")
    token = os.environ.get("REPLICATE_API_TOKEN", "").strip()
    if not token:
        raise RemoteError("no API token: set REPLICATE_API_TOKEN to a Replicate API token")
    jobs = plan(images, out)
    progress = Progress(len(jobs), stdout or sys.stdout, stderr or sys.stderr, secret=token)
    todo = []
    for job in jobs:
        if verified(job.out_dir):
            progress.skipped(job)
        else:
            todo.append(job)
    if todo:
        remote = RemoteModel(model, api_token=token, timeout=TIMEOUT, wait=BATCH_WAIT)
        remote.resolve()  # a model that cannot run is one error, before any upload
        status = Batch(remote, todo, concurrency, progress).run()
    else:
        status = 0
    progress.summary()
    return status


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


def verified(out_dir: Path) -> bool:
    """Does ``out_dir`` already hold a whole bundle whose embedding matches its manifest?"""
    if not (out_dir / MANIFEST_FILE).is_file():
        return False
    try:
        read_bundle(out_dir)
    except BundleError as exc:
        log.info("%s will be encoded again: %s", out_dir, exc)
        return False
    return True


def write_replacing(bundle, out_dir: Path) -> None:
    """``write_bundle`` into ``out_dir``, moving aside whatever (unverified) is there first."""
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        old = out_dir.with_name(f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}")
        out_dir.rename(old)
        try:
            write_bundle(bundle, out_dir)
        finally:
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)
        return
    write_bundle(bundle, out_dir)


class Batch:
    """Worker threads over a queue of jobs; the main thread counts results and handles Ctrl+C."""

    def __init__(self, remote: RemoteModel, jobs: list[Job], concurrency: int, progress: Progress) -> None:
        self.remote = remote
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
        for worker in self.workers:
            worker.start()
        failed = 0
        try:
            for _ in range(self.total):
                job, error, seconds = self._next_result()
                if error is None:
                    self.progress.done(job, seconds)
                else:
                    failed += 1
                    self.progress.failed(job, error)
        except KeyboardInterrupt:
            return self._interrupt()
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
                created = functools.partial(self._created, job)
                bundle = self.remote.encode(job.image, self.stop, created)
                write_replacing(bundle, job.out_dir)
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

    def _interrupt(self) -> int:
        """Cancel every prediction in flight; wait (a sync window at most) for those still being created
        to learn their ids and cancel themselves; a second Ctrl+C leaves them to their deadline."""
        self.stop.set()
        with self.lock:
            known = [pid for pid in self.in_flight.values() if pid is not None]
        self.progress.line(f"interrupted: canceling {len(known)} prediction(s) in flight", err=True)
        for pid in known:
            self.remote.cancel(pid)
        try:
            while any(worker.is_alive() for worker in self.workers):
                with self.lock:
                    pending = sum(pid is None for pid in self.in_flight.values())
                if pending:
                    self.progress.tick(note=f"waiting up to {BATCH_WAIT} s for {pending} being created")
                time.sleep(0.1)
        except KeyboardInterrupt:
            with self.lock:
                pending = sum(pid is None for pid in self.in_flight.values())
            self.progress.line(
                f"left {pending} prediction(s) being created to their Cancel-After deadline", err=True
            )
        return EXIT_INTERRUPTED


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
