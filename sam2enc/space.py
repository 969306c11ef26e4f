"""``python -m sam2enc.space --models-dir D --port P``: the encoder as a Gradio app, a Hugging Face Space.

The same ``EncoderService`` that predict.py serves on Cog (one encoder implementation), behind one
endpoint, ``api_name="/predict"``: a photo file in, ``embedding.bin`` and ``manifest.json`` out — byte
for byte what ``sam2enc encode`` writes for that photo with the same models. The photo is taken as a
file (``gr.File``), never as ``gr.Image``, which would re-encode it: the manifest's ``source.sha256``
names the bytes that were sent. Bad input is one sentence (``gr.Error``, the words ``predict()`` fails
with on Replicate); anything else is logged here and one sentence there.

The queue is sized for the hardware: ``concurrency`` encodes at once (on CUDA predict.py's 4, so one
photo's JPEG decode overlaps another's encoder; on the CPU 2, since the encoder takes every core and
runs one photo at a time anyway, ``sam2enc/pipeline.py``), and ``QUEUE_PER_WORKER`` waiting per encode
before the Space answers "queue full" rather than let a request wait for minutes. Files gradio keeps
(uploads and the bundles it serves) are deleted after ``CACHE_SECONDS``: a Space's disk stays bounded.

``space/app.py`` is this module's entry point on Hugging Face (``make space`` stages the folder to push);
``sam2enc encode --space`` (sam2enc/space_client.py) is its batch client. The model the Space serves is
published in its config (the ``MODEL_ELEMENT`` component), so that a client can tell whose bundle it has.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .__main__ import DEVICES
from .errors import Sam2EncError
from .extras import MissingDependency, require_runtime
from .flags import add_models_dir
from .image import MAX_FILE_BYTES
from .space_client import API_NAME, MODEL_ELEMENT

log = logging.getLogger("sam2enc.space")  # not __name__: that is __main__ under python -m

CONCURRENCY = {"cuda": 4, "cpu": 2}  # encodes at once; cuda = predict.py's MAX_CONCURRENCY (a test checks)
QUEUE_PER_WORKER = 8  # requests waiting per concurrent encode before "queue full"
CACHE_SECONDS = 900  # uploads and served bundles older than this are deleted (checked every 5 minutes)
PORT_ENV = "GRADIO_SERVER_PORT"  # what Hugging Face sets (7860); --port wins

TITLE = "sam2enc: SAM2 image encoder"
ABOUT = """\
Send a photo once, get SAM2's features back as a **bundle**: `embedding.bin` (8 MiB, float16) and
`manifest.json`. Decode clicks from it in your browser with `decoder.onnx` of the same model
(tens of milliseconds per click, offline), or with `sam2enc decode`. From Python:
`sam2enc encode --space {space} photos/*.jpg --out bundles/`, or gradio_client's
`Client("{space}").predict(handle_file("photo.jpg"), api_name="/predict")`.
"""


def concurrency_for(provider: str) -> int:
    """Encodes at once on this hardware: ``CONCURRENCY`` by the provider the encoder really got."""
    return CONCURRENCY["cuda" if provider == "CUDAExecutionProvider" else "cpu"]


def build_app(service, concurrency: int, max_queue: int, space: str = "owner/space"):
    """The Gradio app over ``service`` (an ``EncoderService``): one ``/predict`` endpoint, a queue of
    ``max_queue`` with ``concurrency`` encodes at once."""
    import gradio as gr

    encoder = service.encoder

    def predict(image: str | None) -> tuple[str, str]:
        """A photo (JPEG, PNG, WebP, GIF, BMP, TIFF, AVIF; EXIF orientation applied) → embedding.bin,
        manifest.json: the SAM2 feature bundle for the browser decoder."""
        if not image:
            raise gr.Error("no photo was sent: upload the photo to encode", print_exception=False)
        try:
            files = service.encode(image)
        except Sam2EncError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except Exception:
            log.exception("encoding failed")
            raise gr.Error(
                "the encoder failed on this photo; the Space's log says why", print_exception=False
            ) from None
        return str(files.embedding), str(files.manifest)

    model = encoder.info
    random = " — **RANDOM WEIGHTS: its bundles are meaningless**" if model.random_weights else ""
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(300, CACHE_SECONDS)) as app:
        gr.Markdown(f"# {TITLE}\n\n{ABOUT.format(space=space)}")
        gr.Markdown(f"Model: `{model.model}` on {encoder.provider} ({encoder.precision}){random}")
        gr.JSON(value=encoder.model, label="model (the manifest's)", elem_id=MODEL_ELEMENT, visible=False)
        with gr.Row():
            photo = gr.File(label="photo", type="filepath")
            with gr.Column():
                embedding = gr.File(label="embedding.bin", interactive=False)
                manifest = gr.File(label="manifest.json", interactive=False)
        button = gr.Button("Encode", variant="primary")
        button.click(
            predict,
            photo,
            [embedding, manifest],
            api_name=API_NAME.lstrip("/"),
            concurrency_limit=concurrency,
        )
    app.queue(max_size=max_queue, default_concurrency_limit=concurrency)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.WARNING)
    logging.getLogger("sam2enc").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        return serve(args)
    except (Sam2EncError, MissingDependency) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def serve(args: argparse.Namespace) -> int:
    require_runtime()
    try:
        import gradio  # noqa: F401  (before the encoder's setup: a missing extra is one sentence, at once)
    except ModuleNotFoundError:
        raise MissingDependency(
            "the Space needs gradio, which is not installed: pip install '.[space]' from the sam2enc checkout"
        ) from None
    from .service import EncoderService

    service = EncoderService(args.models_dir, device=args.device)
    concurrency = args.concurrency or concurrency_for(service.encoder.provider)
    max_queue = args.max_queue or QUEUE_PER_WORKER * concurrency
    space = os.environ.get("SPACE_ID", "owner/space")  # Hugging Face sets it to the Space's name
    app = build_app(service, concurrency, max_queue, space)
    port = args.port or int(os.environ.get(PORT_ENV) or 7860)
    log.info(
        "sam2enc from %s; queue: %d encodes at once, %d waiting at most",
        Path(__file__).resolve().parent,
        concurrency,
        max_queue,
    )
    app.launch(
        server_name=args.host,  # None: $GRADIO_SERVER_NAME (0.0.0.0 on Hugging Face), else 127.0.0.1
        server_port=port,
        max_file_size=MAX_FILE_BYTES,
        show_error=False,
        quiet=False,
    )
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sam2enc.space",
        description="Serve the encoder as a Gradio app (a Hugging Face Space): one endpoint, /predict.",
    )
    add_models_dir(
        parser,
        None,
        "exported model directory (default $SAM2ENC_MODELS_DIR, else weights/)",
    )
    parser.add_argument("--port", type=int, help=f"port (default ${PORT_ENV}, else 7860)")
    parser.add_argument("--host", help="address to listen on (default $GRADIO_SERVER_NAME, else 127.0.0.1)")
    parser.add_argument(
        "--device", choices=DEVICES, help="execution provider (default $SAM2ENC_DEVICE, else auto)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help=f"encodes at once (default {CONCURRENCY['cuda']} on CUDA, {CONCURRENCY['cpu']} on the CPU)",
    )
    parser.add_argument(
        "--max-queue", type=int, metavar="N", help=f"requests waiting at most (default {QUEUE_PER_WORKER}×N)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


if __name__ == "__main__":
    sys.exit(main())
