"""Warped optical flow (TSN's third modality): flow with the dominant camera motion removed.

Method, as in iDT (Wang & Schmid 2013) and TSN's ``dense_flow`` warp tool:

1. track corner features from frame 1 to frame 2 (``cv2.goodFeaturesToTrack`` + pyramidal Lucas–Kanade);
2. fit a homography H (frame-1 points -> frame-2 points) with RANSAC (``cv2.findHomography``), so points on
   independently moving objects fall out as outliers;
3. warp frame 2 back onto frame 1 (``warped2(p) = frame2(H p)``) and recompute dense flow between frame 1 and
   the warped frame 2.

The result is ~0 wherever the scene moves only with the camera and keeps the motion of things that move on
their own. iDT additionally drops features inside detected humans; no detector is used here. When too few
features track (textureless frames) the homography is the identity and the flow is unchanged.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["estimate_homography", "warp_to_first", "warped_flow"]


def estimate_homography(
    first: np.ndarray,
    second: np.ndarray,
    *,
    max_corners: int = 1000,
    ransac_threshold: float = 1.0,
    min_matches: int = 12,
) -> np.ndarray:
    """3×3 homography mapping pixel coordinates of ``first`` onto ``second`` (grayscale uint8 images)."""
    import cv2

    corners = cv2.goodFeaturesToTrack(first, maxCorners=max_corners, qualityLevel=0.001, minDistance=3)
    if corners is None or len(corners) < min_matches:
        return np.eye(3)
    tracked, status, _ = cv2.calcOpticalFlowPyrLK(first, second, corners, None, winSize=(15, 15), maxLevel=3)
    good = status.ravel() == 1
    if good.sum() < min_matches:
        return np.eye(3)
    homography, _ = cv2.findHomography(corners[good], tracked[good], cv2.RANSAC, ransac_threshold)
    return np.eye(3) if homography is None else homography


def warp_to_first(second: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """Resample ``second`` at H·p for every pixel p of the first frame (camera motion undone)."""
    import cv2

    height, width = second.shape[:2]
    return cv2.warpPerspective(
        second,
        homography,
        (width, height),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )


def warped_flow(
    first: np.ndarray, second: np.ndarray, flow_fn: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """Dense flow (H, W, 2) between ``first`` and ``second`` with the camera homography compensated."""
    homography = estimate_homography(first, second)
    return flow_fn(first, warp_to_first(second, homography))
