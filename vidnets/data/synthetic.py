"""Synthetic action videos in class families that isolate one cue: motion, direction, or order.

Every video shows two random high-contrast objects (sprites) over a soft random background.
``family`` chooses what the class is:

``"motion"`` (default) – how the sprites move (both alike)::

    0 MoveUp   1 MoveDown   2 MoveSideways (left or right)   3 Rotate (either way)
    4 Expand   5 Contract   6 DiagonalUp (up-left or up-right)   7 DiagonalDown

  Translations wrap around the frame; expansion and contraction follow a log-scale sawtooth with
  a random phase. The classes are unchanged by a horizontal flip (left/right and the rotation
  sense are drawn at random inside a class), so the flip augmentation of every paper recipe keeps
  the labels right.

``"mirrored"`` – direction-sensitive classes in mirrored pairs, plus two that a mirror keeps::

    0 MoveLeft   1 MoveRight   2 RotateCW   3 RotateCCW   4 MoveUp   5 Expand

  A horizontal flip turns MoveLeft into MoveRight and RotateCW into RotateCCW (``MIRROR_PAIRS``)
  and leaves MoveUp and Expand as they are: training with a plain random flip gives half of the
  pairs' clips the wrong label, which is what ``data.flip_label_map`` (or no flip) repairs.

``"order"`` – two classes that differ only in the order of two events far apart in time::

    0 CircleThenSquare   1 SquareThenCircle

  The sprites drift sideways (the same in both classes). A large marker of a random colour, at a
  random place, appears for the middle three quarters of the first third of the video (a disk in
  CircleThenSquare, a square in SquareThenCircle) and the other marker for the middle three quarters
  of the last third; the middle third has no marker. Each event starts and ends with marker-free
  frames, so any stretch of less than a third of the video shows "nothing, one marker, nothing" in
  both classes alike: a single frame or a short clip cannot tell the classes apart, and neither can
  any order-free pooling of such views (averaging clip scores over the video). Only a model that
  sees both ends of the video *and knows which end is which* can. That is the TSN claim in its
  purest form: K=3 segments cover the start, middle and end, and TSN's ``weighted`` consensus
  (learned per-segment weights, one of the paper's three, Table 3) keeps the segment order.
  TSN's ``avg`` and ``max`` consensus are symmetric in the segments and stay at chance here by
  construction, so they would not test the claim; on real data they work because real classes
  differ in what the segments show, not only in their order.

Appearance never depends on the class, by construction: video ``j`` of every class uses the
same random draw (background, sprites, start position, phase, speed, markers), so frame 0 of
video ``j`` is the same picture in all classes, and because positions wrap around and rotation
angle and scale phase are uniform, every later frame has the same distribution in all classes
too (in "order", each marker is on screen for the same number of frames in both classes). A
single frame is therefore at chance; only motion (or, in "order", the order of the events)
tells the classes apart.

Output (UCF101 layout, so ``load_annotations("ucf101", out_dir)`` works)::

    out_dir/classInd.txt  trainlist01.txt  testlist01.txt
    out_dir/<Class>/v_<Class>_g<group>_c<clip>.avi     (MPEG-4 Part 2, GOP 12, ~4 bits/pixel)

Groups: ``videos_per_class`` videos are spread over groups of 4 clips (1 when there are fewer
than 8 videos per class); the last quarter of the groups is the test split (like UCF101, clips of one group never straddle splits).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np

MOTIONS = ("MoveUp", "MoveDown", "MoveSideways", "Rotate", "Expand", "Contract", "DiagonalUp", "DiagonalDown")
MIRRORED = ("MoveLeft", "MoveRight", "RotateCW", "RotateCCW", "MoveUp", "Expand")
#: each direction-sensitive class of "mirrored" and the class its horizontal mirror image belongs to
MIRROR_PAIRS = {"MoveLeft": "MoveRight", "MoveRight": "MoveLeft", "RotateCW": "RotateCCW", "RotateCCW": "RotateCW"}
ORDER = ("CircleThenSquare", "SquareThenCircle")
FAMILIES = {"motion": MOTIONS, "mirrored": MIRRORED, "order": ORDER}
DEFAULT_CLASSES = {"motion": 6, "mirrored": len(MIRRORED), "order": len(ORDER)}
# (motion of _motion, side): cv2 rotates counter-clockwise for positive angles, so side +1 is CCW
_MIRRORED_MOTIONS = {"MoveLeft": (2, -1.0), "MoveRight": (2, 1.0), "RotateCW": (3, -1.0), "RotateCCW": (3, 1.0),
                     "MoveUp": (0, 1.0), "Expand": (4, 1.0)}
GOP = 12
GENERATOR_VERSION = 3  # bump when the pictures change, so stale sets on disk are regenerated


def _smooth_texture(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Random colour texture: a coarse random grid upsampled smoothly, plus fine noise."""
    coarse = rng.uniform(0, 255, size=(cells, cells, 3)).astype(np.float32)
    tex = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    tex += rng.normal(0, 12, size=(h, w, 3)).astype(np.float32)
    return np.clip(tex, 0, 255)


def _sprite(rng: np.random.Generator, size: int) -> dict:
    """A high-contrast object: a checker of two random colours in an ellipse or rectangle, with a
    stripe marking its orientation, at a random place, angle and scale phase."""
    k = int(size * rng.uniform(0.35, 0.5))
    cells = int(rng.integers(2, 5))
    yy, xx = np.mgrid[:k, :k] / (k - 1) * 2 - 1
    checker = ((np.floor((xx + 1) * cells / 2) + np.floor((yy + 1) * cells / 2)) % 2)[..., None]
    c1, c2 = rng.uniform(0, 255, size=(2, 3))
    img = (checker * c1 + (1 - checker) * c2).astype(np.float32)
    if rng.random() < 0.5:
        mask = ((xx / rng.uniform(0.8, 1.0)) ** 2 + (yy / rng.uniform(0.6, 1.0)) ** 2 <= 1.0)
    else:
        mask = (np.abs(xx) <= rng.uniform(0.7, 1.0)) & (np.abs(yy) <= rng.uniform(0.5, 0.9))
    img[(np.abs(yy) < 0.15) & (xx > 0)] = rng.uniform(0, 255, size=3)
    return {"image": img, "mask": mask.astype(np.float32),
            "start": rng.uniform(0, size, size=2),     # centre (x, y)
            "angle": rng.uniform(0, 360),              # degrees
            "phase": rng.uniform(0, 1)}                # position in the scale cycle


def _appearance(rng: np.random.Generator, size: int, sprites: int = 2) -> dict:
    """Everything random about one video except its motion class (shared by all classes)."""
    base = rng.uniform(60, 196, size=3).astype(np.float32)
    background = base + 0.2 * (_smooth_texture(rng, size, size, 4) - 128)  # soft, so objects stand out
    return {
        "background": np.clip(background, 0, 255),
        "sprites": [_sprite(rng, size) for _ in range(sprites)],
        "speed": rng.uniform(0.8, 1.2),                # shared speed factor
        "side": float(rng.choice([-1.0, 1.0])),        # left/right, rotation sense
    }


def _motion(motion: int, t: int, sprite: dict, app: dict, size: int) -> tuple[float, float, float, float]:
    """(dx, dy, angle, scale) of a sprite at frame ``t`` under class ``motion``."""
    shift = 2.0 * app["speed"] * size / 64         # pixels per frame for translations
    spin = 9.0 * app["speed"]                      # degrees per frame
    cycle = 0.06 * app["speed"]                    # scale cycles per frame
    dx = dy = 0.0
    angle, scale = sprite["angle"], 1.0
    if motion in (0, 1):                           # up / down
        dy = shift * t * (-1 if motion == 0 else 1)
    elif motion == 2:                              # sideways
        dx = shift * t * app["side"]
    elif motion == 3:                              # rotate
        angle = sprite["angle"] + spin * t * app["side"]
    elif motion in (4, 5):                         # expand / contract
        phase = (sprite["phase"] + cycle * t * (1 if motion == 4 else -1)) % 1.0
        scale = 0.7 * (1.6 ** phase)               # 0.7 … 1.12, log-uniform over the cycle
    else:                                          # diagonal up / down
        d = shift * t / np.sqrt(2)
        dx, dy = d * app["side"], d * (-1 if motion == 6 else 1)
    return dx, dy, angle, scale


def render_video(motion: int, app: dict, frames: int, size: int) -> np.ndarray:
    """uint8 (T, S, S, 3) RGB frames of the sprites moving with class ``motion``."""
    s = size
    canvases = []
    for sp in app["sprites"]:  # each sprite centred on a frame-sized canvas, so warps keep it whole
        k = sp["image"].shape[0]
        canvas = np.zeros((s, s, 4), np.float32)
        top = (s - k) // 2
        canvas[top:top + k, top:top + k, :3] = sp["image"]
        canvas[top:top + k, top:top + k, 3] = sp["mask"]
        canvases.append(canvas)
    out = np.empty((frames, s, s, 3), np.uint8)
    for t in range(frames):
        frame = app["background"].copy()
        for sp, canvas in zip(app["sprites"], canvases):
            dx, dy, angle, scale = _motion(motion, t, sp, app, s)
            m = cv2.getRotationMatrix2D((s / 2, s / 2), angle, scale)
            layer = cv2.warpAffine(canvas, m, (s, s), flags=cv2.INTER_LINEAR, borderValue=0)
            cx, cy = sp["start"][0] + dx - s / 2, sp["start"][1] + dy - s / 2
            layer = np.roll(layer, (int(round(cy)) % s, int(round(cx)) % s), axis=(0, 1))
            alpha = layer[..., 3:4]
            frame = frame * (1 - alpha) + layer[..., :3] * alpha
        out[t] = np.clip(frame + 0.5, 0, 255).astype(np.uint8)
    return out


def _markers(rng: np.random.Generator, size: int) -> dict:
    """The event markers of an "order" video (shared by its classes): colour, centre and radius."""
    radius = size * rng.uniform(0.16, 0.22)
    return {"colour": rng.uniform(0, 255, size=3).astype(np.uint8),
            "centre": rng.uniform(radius + 1, size - radius - 1, size=2), "radius": radius}


def event_windows(frames: int) -> list[range]:
    """The frames of the first and the second event of an "order" video: the middle three quarters
    of the first and of the last third, so each event is surrounded by marker-free frames."""
    third = frames / 3
    return [range(max(1, round(third * (k + 0.125))), round(third * (k + 0.875))) for k in (0, 2)]


def _draw_marker(frame: np.ndarray, shape: str, marker: dict) -> None:
    """Paint a disk, or a square of the same area, in place."""
    yy, xx = np.mgrid[:frame.shape[0], :frame.shape[1]] + 0.5
    (cx, cy), r = marker["centre"], marker["radius"]
    if shape == "circle":
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    else:
        half = r * np.sqrt(np.pi) / 2
        mask = (np.abs(xx - cx) <= half) & (np.abs(yy - cy) <= half)
    frame[mask] = marker["colour"]


def render_class(family: str, name: str, app: dict, frames: int, size: int) -> np.ndarray:
    """uint8 (T, S, S, 3) RGB frames of class ``name`` of ``family`` (see the module doc)."""
    if family == "motion":
        return render_video(MOTIONS.index(name), app, frames, size)
    if family == "mirrored":
        motion, side = _MIRRORED_MOTIONS[name]
        return render_video(motion, {**app, "side": side}, frames, size)
    out = render_video(2, app, frames, size)  # the same sideways drift in both classes
    shapes = ("circle", "square") if name == "CircleThenSquare" else ("square", "circle")
    for shape, window in zip(shapes, event_windows(frames)):
        for t in window:
            _draw_marker(out[t], shape, app["markers"])
    return out


def write_video(path: str | os.PathLike, frames: np.ndarray, *, fps: int = 25, codec: str = "mpeg4") -> None:
    """Encode uint8 (T, H, W, 3) RGB frames (temp file + rename, so a crash leaves no half file)."""
    import av

    path = Path(path)
    tmp = path.with_name(path.name + ".part" + path.suffix)
    with av.open(str(tmp), "w", format="avi" if path.suffix == ".avi" else None) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = GOP
        stream.codec_context.thread_count = 1       # deterministic output
        # ~4 bits per pixel: high quality at these tiny sizes, so codec noise stays small
        stream.bit_rate = max(200_000, 4 * frames.shape[1] * frames.shape[2] * fps)
        stream.codec_context.flags |= av.codec.context.Flags.bitexact
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)


def generate_dataset(out_dir: str | os.PathLike, *, num_classes: int | None = None, videos_per_class: int = 32,
                     frames: int = 32, size: int = 64, seed: int = 0, fps: int = 25,
                     codec: str = "mpeg4", test_fraction: float = 0.25, family: str = "motion") -> Path:
    """Write the synthetic dataset (see module doc); returns ``out_dir``.

    ``family`` is "motion", "mirrored" or "order"; ``num_classes`` takes the family's first classes
    (default: 6 for "motion", all of the others). Deterministic given ``seed`` (same seed →
    identical decoded frames). Videos already written with the same settings (``synthetic.json``)
    are kept, so an interrupted run resumes; a set made with other settings or an older generator
    is replaced.
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")
    names = FAMILIES[family]
    num_classes = DEFAULT_CLASSES[family] if num_classes is None else num_classes
    if not 2 <= num_classes <= len(names):
        raise ValueError(f"num_classes must be 2..{len(names)} for family {family}, got {num_classes}")
    if videos_per_class < 2 or frames < 2 or size < 16:
        raise ValueError("need videos_per_class >= 2, frames >= 2, size >= 16")
    if family == "order" and frames < 12:
        raise ValueError(f"family order needs frames >= 12 (two events far apart), got {frames}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    classes = names[:num_classes]
    # videos already on disk are reused only if they were made with the same settings
    settings = {"version": GENERATOR_VERSION, "num_classes": num_classes, "videos_per_class": videos_per_class,
                "frames": frames, "size": size, "seed": seed, "fps": fps, "codec": codec}
    if family != "motion":  # the default family's manifest stays as it always was
        settings["family"] = family
    manifest = out / "synthetic.json"
    try:
        previous = json.loads(manifest.read_text())
    except (OSError, ValueError):
        previous = None
    if previous is None or {k: v for k, v in previous.items() if k != "complete"} != settings:
        for name in {n for family_names in FAMILIES.values() for n in family_names}:
            shutil.rmtree(out / name, ignore_errors=True)
    from vidnets.utils.io import atomic_write_text

    atomic_write_text(manifest, json.dumps({**settings, "complete": False}, indent=2))
    per_group = 4 if videos_per_class >= 8 else 1
    groups = int(np.ceil(videos_per_class / per_group))
    test_groups = min(max(1, int(round(groups * test_fraction))), groups - 1)
    train_lines, test_lines = [], []
    for j in range(videos_per_class):
        rng = np.random.default_rng([seed, j])
        app = _appearance(rng, size)  # shared by all classes
        if family == "order":
            app["markers"] = _markers(rng, size)
        g, c = j // per_group + 1, j % per_group + 1
        for label, name in enumerate(classes):
            rel = f"{name}/v_{name}_g{g:02d}_c{c:02d}.avi"
            path = out / rel
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                write_video(path, render_class(family, name, app, frames, size), fps=fps, codec=codec)
            if g > groups - test_groups:
                test_lines.append(rel)
            else:
                train_lines.append(f"{rel} {label + 1}")
    atomic_write_text(out / "classInd.txt", "".join(f"{i + 1} {n}\n" for i, n in enumerate(classes)))
    atomic_write_text(out / "trainlist01.txt", "".join(sorted(line + "\n" for line in train_lines)))
    atomic_write_text(out / "testlist01.txt", "".join(sorted(line + "\n" for line in test_lines)))
    atomic_write_text(manifest, json.dumps({**settings, "complete": True}, indent=2))
    return out
