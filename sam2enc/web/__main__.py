"""python -m sam2enc.web serve [--host 127.0.0.1] [--port 8000] [--upstream URL] [--models-dir DIR]
[--random-if-missing] [--no-demo]

python -m sam2enc.web build OUT [--models-dir DIR | --random-if-missing] [--demo PHOTO ...] [--proxy URL]"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import socket
import sys
from pathlib import Path

from ..flags import add_models_dir
from ..modeldir import DEFAULT_MODELS_DIR
from . import assets
from .proxy import CANCEL_AFTER, DEFAULT_UPSTREAM, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sam2enc.web", description="Serve the browser app.")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    p = sub.add_parser("serve", help="serve the app and forward prediction calls with the caller's token")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--upstream", default=DEFAULT_UPSTREAM, help="Replicate-compatible API base URL")
    p.add_argument(
        "--cancel-after",
        type=int,
        default=CANCEL_AFTER,
        metavar="SECONDS",
        help=f"deadline sent as Cancel-After with every prediction (default {CANCEL_AFTER}; 0: none; min 5)",
    )
    add_models_dir(p, DEFAULT_MODELS_DIR, "exported model directory with decoder.onnx and model.json")
    p.add_argument(
        "--random-if-missing",
        action="store_true",
        help="with no exported model, serve the loudly labelled random-weight tiny export (as make demo)",
    )
    p.add_argument("--no-demo", action="store_true", help="do not encode the demo photo at startup")
    p.set_defaults(run=_serve, doing="serving")
    b = sub.add_parser(
        "build", help="write the app as a static site, demo bundles baked in (sam2enc/web/site.py)"
    )
    b.add_argument("out", type=Path, metavar="OUT", help="a new or empty directory, or an earlier build")
    add_models_dir(b, DEFAULT_MODELS_DIR, "exported model directory with decoder.onnx and model.json")
    b.add_argument(
        "--random-if-missing", action="store_true", help="with no exported model, ship the random one"
    )
    b.add_argument(
        "--demo",
        dest="demos",
        type=Path,
        action="append",
        metavar="PHOTO",
        help="a photo to encode now and ship as a demo (repeatable; default: the astronaut)",
    )
    b.add_argument(
        "--proxy", metavar="URL", help="base URL of a hosted token proxy (sam2enc/web/edge/proxy.js)"
    )
    b.set_defaults(run=_build, doing="building the site with")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    return args.run(parser, args)


def _models(args) -> Path | None:
    """The models directory to use, or None after saying why there is none."""
    if problem := assets.models_ready(args.models_dir):
        if not args.random_if_missing:
            print(f"error: {problem}.", file=sys.stderr)
            return None
        return assets.random_models(assets.RANDOM_MODELS, args.doing)
    return args.models_dir


def _build(parser: argparse.ArgumentParser, args) -> int:
    from .site import SiteError, build

    models_dir = _models(args)
    if models_dir is None:
        return 2
    demos = len(args.demos) if args.demos else 1
    print(f"building the site in {args.out}: encoding {demos} demo photo(s) on the CPU...", flush=True)
    try:
        built = build(args.out, models_dir, args.demos, args.proxy)
    except SiteError as exc:
        print(f"error: {exc}.", file=sys.stderr)
        return 2
    total = sum(built.files.values())
    print(f"static site in {built.out}: {len(built.files)} files, {total / 2**20:.1f} MiB", flush=True)
    return 0


def _serve(parser: argparse.ArgumentParser, args) -> int:
    if 0 < args.cancel_after < 5:
        parser.error("--cancel-after: Replicate's minimum is 5 seconds (0 sends no deadline)")
    if busy := _port_busy(args.host, args.port):  # before the export and the demo's encode, not after
        print(f"error: {busy}", file=sys.stderr)
        return 2
    models_dir = _models(args)
    if models_dir is None:
        return 2
    demo, reason = None, "started with --no-demo"
    if not args.no_demo:
        print(f"encoding the demo photo with {models_dir} on the CPU (--no-demo skips it)...", flush=True)
        try:
            demo = assets.demo_bundle(models_dir)
        except Exception as exc:  # the app still works without its demo photo; say why
            reason = f"encoding it failed ({exc})"
            logging.getLogger("sam2enc.web").warning("no demo photo: %s", reason)
    try:
        server = serve(args.host, args.port, args.upstream, models_dir, cancel_after=args.cancel_after)
    except OSError as exc:  # taken while the demo was encoded
        print(f"error: {_port_busy(args.host, args.port) or exc}", file=sys.stderr)
        return 2
    assets.install(server, demo, reason)
    print(
        f"sam2enc web app on http://{args.host}:{server.server_address[1]}/ (upstream {args.upstream})",
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


def _port_busy(host: str, port: int) -> str | None:
    """One sentence if ``host:port`` cannot be listened on (bound as the server binds it, with
    SO_REUSEADDR, so a port in TIME_WAIT is not reported), else None."""
    if port == 0:
        return None
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return (
                f"port {port} on {host} is already in use (another `make web` or server?): stop it, "
                f"or pick another port with --port {port + 1}"
            )
        return f"cannot listen on {host}:{port} ({exc.strerror or exc})"
    return None


if __name__ == "__main__":
    sys.exit(main())
