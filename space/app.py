"""The Hugging Face Space: sam2enc's encoder behind one Gradio endpoint, ``/predict`` (sam2enc/space.py).

Hugging Face runs ``python app.py``. ``make space`` stages this folder for a push, into build/space/: this
file, README.md (the Space's settings) and requirements.txt, with a copy of the sam2enc package and the
exported encoder (``encoder.onnx`` + ``model.json``) in weights/ beside it. In the checkout it runs as it
is (``python space/app.py --models-dir weights``), with the repository's sam2enc.
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for root in (HERE, HERE.parent):  # staged: sam2enc/ beside this file; in the checkout: the repository's
    if (root / "sam2enc" / "space.py").is_file():
        sys.path.insert(0, str(root))
        break
if not os.environ.get("SAM2ENC_MODELS_DIR") and (HERE / "weights" / "model.json").is_file():
    os.environ["SAM2ENC_MODELS_DIR"] = str(HERE / "weights")

from sam2enc.space import main  # noqa: E402  (after the path above)

if __name__ == "__main__":
    sys.exit(main())
