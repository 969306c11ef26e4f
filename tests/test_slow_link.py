"""The bench's simulated link (tools/slow_link.py) paces what it relays: the round-trip table is only as
true as this. Cost: well under a second (one 250 kB transfer over loopback)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from tools.slow_link import Link, SlowLink


def test_a_link_serialises_at_its_rate_queues_and_adds_its_delay():
    link = Link(rate_bps=20e6, delay_s=0.02)  # 20 Mbit/s, 40 ms round trip
    assert link.schedule(250_000, arrived=0.0) == pytest.approx(0.1 + 0.02)  # 2 Mbit at 20 Mbit/s
    assert link.schedule(25_000, arrived=0.05) == pytest.approx(0.11 + 0.02)  # queued behind the first
    assert link.schedule(1_000, arrived=1.0) == pytest.approx(1.0004 + 0.02)  # an idle link starts at once


@pytest.mark.server
def test_bytes_through_the_relay_take_as_long_as_the_link_says():
    sink = socket.create_server(("127.0.0.1", 0))
    received = []

    def drain() -> None:
        conn, _ = sink.accept()
        with conn:
            while data := conn.recv(65536):
                received.append((time.time(), len(data)))

    threading.Thread(target=drain, daemon=True).start()
    relay = SlowLink(sink.getsockname(), up_mbit=20, down_mbit=50, rtt_ms=40)
    try:
        with socket.create_connection(("127.0.0.1", relay.port)) as conn:
            start = time.time()
            conn.sendall(b"POST /api/files HTTP/1.1\r\n" + b"x" * (250_000 - 26))
            conn.shutdown(socket.SHUT_WR)
            for _ in range(300):
                if sum(n for _, n in received) >= 250_000:
                    break
                time.sleep(0.01)
        took = received[-1][0] - start
        assert sum(n for _, n in received) == 250_000
        assert 0.12 - 0.005 <= took < 1.0, took  # 100 ms on the wire + 20 ms one way; never sooner
        up = [c for c in relay.log if c.direction == "up"]
        assert sum(c.nbytes for c in up) == 250_000 and up[0].request == "POST /api/files"
    finally:
        relay.close()
        sink.close()
