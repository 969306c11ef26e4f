"""`decode`, the library and the page show the mask with the *highest* predicted IoU (SAM2's own choice
with ``multimask_output=True``). The CLI test compares against the same property, so this checks the
property itself, against scores whose order is known (fast tier)."""

from __future__ import annotations

import numpy as np
import pytest

from sam2enc.decoder import Prediction


@pytest.mark.parametrize("scores", [(0.2, 0.9, 0.5), (0.7, 0.1, 0.3), (0.1, 0.2, 0.95)])
def test_the_best_mask_is_the_one_with_the_highest_predicted_iou(scores):
    masks = np.zeros((3, 4, 4), bool)
    for index in range(3):
        masks[index, index] = True  # each mask tells which one it is
    prediction = Prediction(masks, np.array(scores, np.float32), np.zeros((3, 256, 256), np.float32))
    highest = max(range(3), key=lambda i: scores[i])
    assert prediction.best == highest
    assert prediction.masks[prediction.best][highest].all()
