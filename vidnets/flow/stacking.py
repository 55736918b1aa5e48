"""Temporal-stream inputs built from displacement fields (Two-Stream, Simonyan & Zisserman 2014, §3.1).

All functions take fields as float arrays (L, 2, H, W) — field k holds (dx_k, dy_k) from frame τ+k to
τ+k+1 — and return a stack (2L, H, W) ordered dx_1, dy_1, dx_2, dy_2, … (channel 2k-1 = x, 2k = y, eq. 1).

* ``flow_stack`` — optical flow stacking (eq. 1): every field sampled at the same pixel p.
* ``trajectory_stack`` — trajectory stacking (eq. 2–3): field k sampled at p_k, where p_1 = p and
  p_{k+1} = p_k + d_k(p_k); sub-pixel positions are read bilinearly; positions that leave the frame are
  read at the nearest border pixel (the paper does not say; clamping keeps the stack defined everywhere).
* ``bidirectional_stack`` — L/2 backward fields before τ and L/2 forward fields from τ, still 2L channels.
  Channel order (not fixed by the paper): time order, backward fields first, i.e. for a window of L
  frame pairs starting at s = τ - L/2: backward fields of pairs s … τ-1, then forward fields of pairs
  τ … τ+L/2-1. Stored backward field k is the flow from frame k+1 to frame k.
* Mean flow subtraction (§3.1: "from each displacement field d we subtract its mean vector", a crude
  global camera-motion compensation). ``build_stack(..., mean_subtraction=)`` takes:

  - ``"field"`` (also ``True``; the paper) — channel pair k loses the mean vector of the whole field d_k.
    Trajectories are still traced on the measured fields (eq. 2–3 follow the points' motion), and only
    the values are compensated.
  - ``"channel"`` — every channel of the finished stack loses its own spatial mean
    (``subtract_mean_flow``). For trajectory stacking this is the mean of the values *sampled* along the
    trajectories, not the field's mean, so the two differ; for flow and bidirectional stacking they
    are identical, since channel k is then field k itself.
  - ``False`` / ``"none"`` — no subtraction.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "REPRESENTATIONS",
    "flow_stack",
    "trajectory_stack",
    "bidirectional_stack",
    "subtract_mean_flow",
    "field_means",
    "build_stack",
    "MEAN_SUBTRACTION",
]

REPRESENTATIONS = ("stack", "trajectory", "bidirectional")
MEAN_SUBTRACTION = ("none", "field", "channel")


def _check_fields(fields: np.ndarray) -> np.ndarray:
    fields = np.asarray(fields, dtype=np.float32)
    if fields.ndim != 4 or fields.shape[1] != 2:
        raise ValueError(f"flow fields must have shape (L, 2, H, W), found {tuple(fields.shape)}")
    return fields


def flow_stack(fields: np.ndarray) -> np.ndarray:
    """Eq. 1: (L, 2, H, W) -> (2L, H, W), the fields sampled at the same pixel."""
    fields = _check_fields(fields)
    return fields.reshape(-1, *fields.shape[2:]).copy()


def trajectory_stack(fields: np.ndarray) -> np.ndarray:
    """Eq. 2–3: sample field k along the trajectory p_{k+1} = p_k + d_k(p_k) (bilinear, border-clamped)."""
    import cv2

    fields = _check_fields(fields)
    _, _, height, width = fields.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    px, py = xs.copy(), ys.copy()
    out = np.empty((2 * len(fields), height, width), np.float32)
    for k, field in enumerate(fields):
        for c in range(2):
            out[2 * k + c] = cv2.remap(field[c], px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        px = px + out[2 * k]
        py = py + out[2 * k + 1]
    return out


def bidirectional_stack(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """L/2 backward fields (before τ, time order) then L/2 forward fields (from τ) -> (2L, H, W)."""
    backward, forward = _check_fields(backward), _check_fields(forward)
    if backward.shape != forward.shape:
        raise ValueError(f"backward and forward fields differ in shape: {backward.shape} vs {forward.shape}")
    return flow_stack(np.concatenate([backward, forward]))


def subtract_mean_flow(stack: np.ndarray) -> np.ndarray:
    """Subtract from every displacement channel its spatial mean ((2L, H, W) -> same)."""
    stack = np.asarray(stack, dtype=np.float32)
    return stack - stack.mean(axis=(-2, -1), keepdims=True)


def field_means(fields: np.ndarray) -> np.ndarray:
    """The mean vector of every field, as a (2L, 1, 1) column to subtract from a stack of those fields."""
    fields = _check_fields(fields)
    return fields.mean(axis=(-2, -1)).reshape(-1, 1, 1)


def mean_subtraction_mode(mean_subtraction: bool | str) -> str:
    """``True`` / ``False`` / one of ``MEAN_SUBTRACTION`` -> the name of the mode."""
    if mean_subtraction is True:
        return "field"
    if mean_subtraction is False or mean_subtraction is None:
        return "none"
    if mean_subtraction not in MEAN_SUBTRACTION:
        raise ValueError(
            f"mean_subtraction: expected true, false or one of {', '.join(MEAN_SUBTRACTION)}, "
            f"found {mean_subtraction!r}"
        )
    return str(mean_subtraction)


def build_stack(
    fields: np.ndarray,
    representation: str = "stack",
    *,
    backward_fields: np.ndarray | None = None,
    mean_subtraction: bool | str = False,
) -> np.ndarray:
    """One temporal-stream input from a window of L fields (and, for "bidirectional", their backward fields).

    For "bidirectional" the window's first L/2 pairs are taken from ``backward_fields`` and the last L/2
    from ``fields`` (same window, same pair numbering), so every representation spans the same frames.
    ``mean_subtraction``: see the module docstring (``True`` = ``"field"``, the paper's).
    """
    fields = _check_fields(fields)
    mode = mean_subtraction_mode(mean_subtraction)
    if representation == "stack":
        stack = flow_stack(fields)
    elif representation == "trajectory":
        stack = trajectory_stack(fields)
    elif representation == "bidirectional":
        if backward_fields is None:
            raise ValueError("bidirectional stacking needs backward flow (extract with --backward)")
        if len(fields) % 2:
            raise ValueError(f"bidirectional stacking needs an even L, found L={len(fields)}")
        half = len(fields) // 2
        used = np.concatenate([_check_fields(backward_fields)[:half], fields[half:]])
        stack = bidirectional_stack(used[:half], used[half:])
    else:
        raise ValueError(f"flow representation: expected one of {', '.join(REPRESENTATIONS)}, found {representation!r}")
    if mode == "channel":
        return subtract_mean_flow(stack)
    if mode == "field":
        return stack - field_means(used if representation == "bidirectional" else fields)
    return stack
