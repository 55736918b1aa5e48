"""Each flow method recovers known motion on synthetic 96×96 textured pairs (end-point error bounds).

Measured EPE (px, 12-px border excluded) — farneback / dis / tvl1: sub-pixel translation 0.02 / 0.03 /
0.01, 4° rotation 0.12 / 0.07 / 0.07, moving patch on a still background 0.08 / 0.03 / 0.01. The bounds
below leave roughly 2–4× headroom.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.flow.conftest import affine_pair, texture
from vidnets.flow.extract import METHODS, compute_flow

SIZE, MARGIN = 96, 12


def _epe(flow: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    error = np.linalg.norm(flow - truth, axis=-1)[MARGIN:-MARGIN, MARGIN:-MARGIN]
    if mask is not None:
        error = error[mask[MARGIN:-MARGIN, MARGIN:-MARGIN]]
    return float(error.mean())


def _translation():
    first = texture(SIZE, SIZE, 0)
    return (first, *affine_pair(first, np.float32([[1, 0, 2.5], [0, 1, -1.5]])), None)


def _rotation():
    import cv2

    first = texture(SIZE, SIZE, 1)
    matrix = cv2.getRotationMatrix2D((SIZE / 2, SIZE / 2), 4, 1.0).astype(np.float32)
    return (first, *affine_pair(first, matrix), None)


def _moving_patch():
    """Still background; a 32×32 patch with its own texture moves by (+4, +2)."""
    background, patch = texture(SIZE, SIZE, 2), texture(32, 32, 3)
    first, second = background.copy(), background.copy()
    first[28:60, 36:68] = patch
    second[30:62, 40:72] = patch
    truth = np.zeros((SIZE, SIZE, 2), np.float32)
    truth[28:60, 36:68] = (4, 2)
    # score away from the patch edges (occlusions): far background + patch interior
    mask = np.ones((SIZE, SIZE), bool)
    mask[22:66, 30:78] = False
    mask[34:54, 42:62] = True
    return first, second, truth, mask


CASES = {"translation": (_translation, 0.15), "rotation": (_rotation, 0.35), "patch": (_moving_patch, 0.3)}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", list(CASES))
def test_end_point_error_below_bound(method, case):
    make, bound = CASES[case]
    first, second, truth, mask = make()
    flow = compute_flow(first, second, method)
    assert flow.shape == (SIZE, SIZE, 2) and flow.dtype == np.float32
    assert _epe(flow, truth, mask) < bound

