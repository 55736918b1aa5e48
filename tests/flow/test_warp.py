from __future__ import annotations

import numpy as np
import pytest

from tests.flow.conftest import texture
from vidnets.flow.extract import make_flow_fn
from vidnets.flow.warp import estimate_homography, warped_flow


def _camera_and_patch():
    """Frame 2 = frame 1 under a global homography (camera motion), plus a patch moving on its own."""
    import cv2

    size = 128
    first = texture(size, size, 7)
    homography = np.array([[1.01, 0.01, 3.0], [-0.01, 1.0, 1.5], [2e-5, 1e-5, 1.0]])
    second = cv2.warpPerspective(first, homography, (size, size), borderMode=cv2.BORDER_REFLECT)
    patch = texture(32, 32, 8)
    first[48:80, 48:80] = patch
    second[52:84, 48:80] = patch  # +4 px in y, independent of the camera
    return first, second, homography


def _patch_motion_relative_to_camera(homography: np.ndarray) -> np.ndarray:
    """Where the warped second frame shows the patch centre, minus where the first frame shows it."""
    centre = np.array([64.0, 64.0])
    moved = np.linalg.inv(homography) @ np.array([64.0, 68.0, 1.0])
    return moved[:2] / moved[2] - centre


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_warped_flow_is_zero_on_background_and_keeps_the_patch(method):
    first, second, homography = _camera_and_patch()
    flow_fn = make_flow_fn(method)
    plain = np.linalg.norm(flow_fn(first, second), axis=-1)
    warped_field = warped_flow(first, second, flow_fn)
    warped = np.linalg.norm(warped_field, axis=-1)
    background = np.ones(first.shape, bool)
    background[:12], background[-12:], background[:, :12], background[:, -12:] = False, False, False, False
    background[40:92, 40:88] = False  # the patch and what it uncovers
    patch = (slice(54, 74), slice(54, 74))
    assert np.median(plain[background]) > 2.0  # the camera moves everything
    assert np.median(warped[background]) < 0.3  # ... and warping removes it
    expected = _patch_motion_relative_to_camera(homography)  # ≈ (-4.2, 3.2)
    assert np.linalg.norm(expected) > 4
    assert np.abs(np.median(warped_field[patch].reshape(-1, 2), axis=0) - expected).max() < 0.5


def test_homography_recovered_and_identity_on_flat_images():
    first, second, truth = _camera_and_patch()
    estimate = estimate_homography(first, second)
    corners = np.array([[10, 10, 1], [118, 10, 1], [10, 118, 1], [118, 118, 1]], float).T
    project = lambda h: (h @ corners)[:2] / (h @ corners)[2]
    assert np.abs(project(estimate) - project(truth)).max() < 0.5
    flat = np.full((64, 64), 90, np.uint8)
    assert np.array_equal(estimate_homography(flat, flat), np.eye(3))
