"""A loopback TCP relay that behaves like a user's link: paced bytes each way plus a fixed latency.

``tools/bench_roundtrip.py`` puts it between headless chromium and the token proxy (where a user's home
or phone link is): every byte the browser sends crosses a ``Link`` at the uplink rate, every byte it
receives at the downlink rate, and each crossing adds half the round-trip time. One ``Link`` per
direction is shared by all connections, as one access link is; chunks are delivered in order, at
``max(arrival, link free) + size / rate + one-way delay``. Every delivered chunk is logged with its
connection, direction, size and wall-clock times (``time.time()``, comparable with a page's
``performance.timeOrigin + mark.startTime``), and whether it starts an HTTP request line, so the bench
can say how many bytes and round trips each phase took.

    relay = SlowLink(("127.0.0.1", proxy_port), up_mbit=20, down_mbit=50, rtt_ms=40)
    ... browse http://127.0.0.1:{relay.port}/ ...
    relay.close()
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from dataclasses import dataclass, field

CHUNK = 16 * 1024  # bytes read at once: 6.6 ms at 20 Mbit/s, fine enough for pacing
REQUEST_STARTS = (b"GET ", b"POST ", b"PUT ", b"HEAD ", b"DELETE ", b"OPTIONS ", b"PATCH ")


@dataclass
class Link:
    """One direction of the access link: ``rate_bps`` bits per second, ``delay_s`` one way."""

    rate_bps: float
    delay_s: float
    free_at: float = 0.0  # when the link has finished sending what it was given
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def schedule(self, nbytes: int, arrived: float) -> float:
        """When ``nbytes`` that reached the link at ``arrived`` come out at the far end: queued behind
        what is still being sent, serialised at the rate, then carried for the one-way delay."""
        with self._lock:
            start = max(arrived, self.free_at)
            self.free_at = start + nbytes * 8 / self.rate_bps
            return self.free_at + self.delay_s


@dataclass(frozen=True)
class Chunk:
    """One delivered piece: ``direction`` "up" (browser → proxy) or "down"; times from ``time.time()``."""

    conn: int
    direction: str
    nbytes: int
    arrived: float
    delivered: float
    request: str | None  # "POST /api/files" when the chunk begins an HTTP request line


class SlowLink:
    """Listen on 127.0.0.1 (an ephemeral port) and relay every connection to ``target`` over two Links."""

    def __init__(
        self, target: tuple[str, int], up_mbit: float = 20, down_mbit: float = 50, rtt_ms: float = 40
    ) -> None:
        self.target = target
        self.up = Link(up_mbit * 1e6, rtt_ms / 2000)
        self.down = Link(down_mbit * 1e6, rtt_ms / 2000)
        self.log: list[Chunk] = []
        self._log_lock = threading.Lock()
        self._conns = 0
        self._closed = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed.set()
        self.listener.close()

    def quiet_for(self) -> float:
        """Seconds since the last byte was delivered either way (inf before any)."""
        with self._log_lock:
            last = self.log[-1].delivered if self.log else None
        return float("inf") if last is None else time.time() - last

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._conns += 1
            self._pump(client, server, self.up, "up", self._conns)
            self._pump(server, client, self.down, "down", self._conns)

    def _pump(
        self, source: socket.socket, sink: socket.socket, link: Link, direction: str, conn: int
    ) -> None:
        """Two threads per direction: one reads and schedules, one delivers at the scheduled time, so a
        slow link never stops the reading (the far end's sends are not held back by this relay)."""
        pending: queue.Queue[tuple[float, float, bytes] | None] = queue.Queue()

        def read() -> None:
            while True:
                try:
                    data = source.recv(CHUNK)
                except OSError:
                    data = b""
                if not data:
                    pending.put(None)
                    return
                arrived = time.time()
                pending.put((arrived, link.schedule(len(data), arrived), data))

        def deliver() -> None:
            while (item := pending.get()) is not None:
                arrived, due, data = item
                if (wait := due - time.time()) > 0:
                    time.sleep(wait)
                try:
                    sink.sendall(data)
                except OSError:
                    break
                request = None
                if direction == "up" and data.startswith(REQUEST_STARTS):
                    request = " ".join(data.split(b"\r\n", 1)[0].decode("latin-1").split(" ")[:2])
                with self._log_lock:
                    self.log.append(Chunk(conn, direction, len(data), arrived, time.time(), request))
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

        threading.Thread(target=read, daemon=True).start()
        threading.Thread(target=deliver, daemon=True).start()
