"""Synthetic action videos whose classes differ only in motion.

Every video shows two random high-contrast objects (sprites) over a soft random background. The
class is how the sprites move (both alike)::

    0 MoveUp   1 MoveDown   2 MoveSideways (left or right)   3 Rotate (either way)
    4 Expand   5 Contract   6 DiagonalUp (up-left or up-right)   7 DiagonalDown

Translations wrap around the frame; expansion and contraction follow a log-scale sawtooth with a
random phase. The classes are unchanged by a horizontal flip (left/right and the rotation sense
are drawn at random inside a class), so the flip augmentation of every paper recipe keeps the
labels right.

Appearance never depends on the class, by construction: video ``j`` of every class uses the
same random draw (background, sprite, start position, phase, speed), so frame 0 of video ``j``
is the same picture in all classes, and because positions wrap around and rotation angle and
scale phase are uniform, every later frame has the same distribution in all classes too. A
single frame is therefore at chance; only motion tells the classes apart.

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


def generate_dataset(out_dir: str | os.PathLike, *, num_classes: int = 6, videos_per_class: int = 32,
                     frames: int = 32, size: int = 64, seed: int = 0, fps: int = 25,
                     codec: str = "mpeg4", test_fraction: float = 0.25) -> Path:
    """Write the synthetic dataset (see module doc); returns ``out_dir``.

    Deterministic given ``seed`` (same seed → identical decoded frames). Videos already written
    with the same settings (``synthetic.json``) are kept, so an interrupted run resumes; a set
    made with other settings or an older generator is replaced.
    """
    if not 2 <= num_classes <= len(MOTIONS):
        raise ValueError(f"num_classes must be 2..{len(MOTIONS)}, got {num_classes}")
    if videos_per_class < 2 or frames < 2 or size < 16:
        raise ValueError("need videos_per_class >= 2, frames >= 2, size >= 16")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    classes = MOTIONS[:num_classes]
    # videos already on disk are reused only if they were made with the same settings
    settings = {"version": GENERATOR_VERSION, "num_classes": num_classes, "videos_per_class": videos_per_class,
                "frames": frames, "size": size, "seed": seed, "fps": fps, "codec": codec}
    manifest = out / "synthetic.json"
    try:
        previous = json.loads(manifest.read_text())
    except (OSError, ValueError):
        previous = None
    if previous is None or {k: v for k, v in previous.items() if k != "complete"} != settings:
        for name in MOTIONS:
            shutil.rmtree(out / name, ignore_errors=True)
    from vidnets.utils.io import atomic_write_text

    atomic_write_text(manifest, json.dumps({**settings, "complete": False}, indent=2))
    per_group = 4 if videos_per_class >= 8 else 1
    groups = int(np.ceil(videos_per_class / per_group))
    test_groups = min(max(1, int(round(groups * test_fraction))), groups - 1)
    train_lines, test_lines = [], []
    for j in range(videos_per_class):
        app = _appearance(np.random.default_rng([seed, j]), size)  # shared by all classes
        g, c = j // per_group + 1, j % per_group + 1
        for label, name in enumerate(classes):
            rel = f"{name}/v_{name}_g{g:02d}_c{c:02d}.avi"
            path = out / rel
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                write_video(path, render_video(label, app, frames, size), fps=fps, codec=codec)
            if g > groups - test_groups:
                test_lines.append(rel)
            else:
                train_lines.append(f"{rel} {label + 1}")
    atomic_write_text(out / "classInd.txt", "".join(f"{i + 1} {n}\n" for i, n in enumerate(classes)))
    atomic_write_text(out / "trainlist01.txt", "".join(sorted(line + "\n" for line in train_lines)))
    atomic_write_text(out / "testlist01.txt", "".join(sorted(line + "\n" for line in test_lines)))
    atomic_write_text(manifest, json.dumps({**settings, "complete": True}, indent=2))
    return out
