"""Synthetic action videos in class families that isolate one cue: motion, direction, order, or appearance.

Every video is a camera view of a random scene: a smoothly interpolated random colour texture
(one colour per quarter of the frame size, plus fine noise) strewn with high-contrast objects
(checkers in ellipses or rectangles). The scene is static; what moves is the view, so every pixel
of the frame moves with the class's motion, which gives a dense motion signal. ``family`` chooses
what the class is:

``"motion"`` (default) – how the picture content moves::

    0 MoveUp   1 MoveDown   2 MoveSideways (left or right)   3 Rotate (either way)
    4 Expand   5 Contract   6 DiagonalUp (up-left or up-right)   7 DiagonalDown

  Translations run at 1/16 of the frame size per frame (2 px at 32², times a per-video speed
  factor of 0.8–1.2) over a scene large enough for the whole path, so nothing wraps around;
  rotation turns the view about the frame centre at 9° per frame; expansion and contraction
  follow a log-scale sawtooth with a random phase. The classes are unchanged by a horizontal flip
  (left/right and the rotation sense are drawn at random inside a class), so the flip augmentation
  of every paper recipe keeps the labels right.

``"mirrored"`` – direction-sensitive classes in mirrored pairs, plus two that a mirror keeps::

    0 MoveLeft   1 MoveRight   2 RotateCW   3 RotateCCW   4 MoveUp   5 Expand

  A horizontal flip turns MoveLeft into MoveRight and RotateCW into RotateCCW (``MIRROR_PAIRS``)
  and leaves MoveUp and Expand as they are: training with a plain random flip gives half of the
  pairs' clips the wrong label, which is what ``data.flip_label_map`` (or no flip) repairs.

``"order"`` – two classes that differ only in the order of two events far apart in time::

    0 CircleThenSquare   1 SquareThenCircle

  The view drifts sideways (the same in both classes). A large marker at a random place appears for the middle three quarters of the first third of the video (a disk in
  CircleThenSquare, a square in SquareThenCircle) and the other marker for the middle three quarters
  of the last third; the middle third has no marker. The disk is reddish and the square bluish
  (``MARKER_HUES``, with a random jitter, saturation and value per video), in both classes alike:
  with shape alone, the narrow BN-Inception of the TSN CPU profile did not learn which marker a
  frame shows within its budget, and the claim is about the order of the events, not about
  recognising them. Each event starts and ends with marker-free
  frames, so any stretch of less than a third of the video shows "nothing, one marker, nothing" in
  both classes alike: a single frame or a short clip cannot tell the classes apart, and neither can
  any order-free pooling of such views (averaging clip scores over the video). Only a model that
  sees both ends of the video *and knows which end is which* can. That is the TSN claim in its
  purest form: K=3 segments cover the start, middle and end, and TSN's ``weighted`` consensus
  (learned per-segment weights, one of the paper's three, Table 3) keeps the segment order.
  TSN's ``avg`` and ``max`` consensus are symmetric in the segments and stay at chance here by
  construction, so they would not test the claim; on real data they work because real classes
  differ in what the segments show, not only in their order.

``"appearance"`` – what is seen: the objects strewn over the scene::

    0 RedDisks   1 GreenSquares   2 BlueTriangles   3 YellowRings   4 MagentaCrosses   5 CyanBars

  Instead of the checker objects, the scene (its texture at 30 % contrast) holds solid objects of
  the class's shape and hue (random saturation, brightness, hue jitter within ±8 of OpenCV's 180,
  size and orientation each) on a jittered grid dense enough that a frame shows about two or
  three. The camera moves with a motion drawn at random per video from the "motion" family. Video
  ``j`` of every class uses the same draw (scene texture, object places, jitters, sizes and
  orientations, motion and speed), so the classes differ only in the objects' shape and colour:
  the motion carries no class information, and a single frame carries all of it (the family for
  single-frame recipes such as the Two-Stream spatial net and TSN's RGB stream). Colour is part of
  the class because shape alone was too hard for the narrow nets of the CPU profiles trained from
  scratch on a hundred videos: CNN-M and BN-Inception at 1/8 width stayed at chance (25 %) on
  shape-only classes for 12–30 epochs, and learned these within a few. The shapes and hues keep
  their class under rotation and horizontal flips.

In the other families appearance never depends on the class, by construction: video ``j`` of
every class uses the same random draw (scene, speed, sense, start angle and zoom phase, markers), so frame 0 of video
``j`` is the same picture in all classes. The scene texture is statistically the same everywhere
and (up to its grid) in every orientation, so a later frame shows the same kind of picture in
every class: a single frame is at chance; only motion (or, in "order", the order of the events)
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
SHAPES = ("RedDisks", "GreenSquares", "BlueTriangles", "YellowRings", "MagentaCrosses", "CyanBars")
#: the hue (OpenCV's 0-179 scale) of each "appearance" class's objects
_SHAPE_HUES = {
    "RedDisks": 0,
    "GreenSquares": 60,
    "BlueTriangles": 120,
    "YellowRings": 30,
    "MagentaCrosses": 150,
    "CyanBars": 90,
}
HUE_JITTER = 8  # "appearance": objects' hue within ±8 (of 180) of their class's hue
#: "order": the hue of each event marker, the same in both classes (red disk, blue square)
MARKER_HUES = {"circle": 0, "square": 120}
FAMILIES = {"motion": MOTIONS, "mirrored": MIRRORED, "order": ORDER, "appearance": SHAPES}
DEFAULT_CLASSES = {"motion": 6, "mirrored": len(MIRRORED), "order": len(ORDER), "appearance": len(SHAPES)}
# (motion of _motion, side): cv2 rotates counter-clockwise for positive angles, so side +1 is CCW
_MIRRORED_MOTIONS = {
    "MoveLeft": (2, -1.0),
    "MoveRight": (2, 1.0),
    "RotateCW": (3, -1.0),
    "RotateCCW": (3, 1.0),
    "MoveUp": (0, 1.0),
    "Expand": (4, 1.0),
}
GOP = 12
SHIFT = 1 / 16  # content moves size/16 px per frame (2 px at 32²) times the speed factor
SPEED_RANGE = (0.8, 1.2)  # the per-video speed factor
CELL = 1 / 4  # scene texture: one random colour per size/4 px, smoothly interpolated
SPRITES_PER_FRAME = 2  # objects per frame-sized area of the scene
OBJECT_GRID = 5 / 8  # "appearance": one object per (5·size/8)² cell of the scene
BACKGROUND_CONTRAST = 0.3  # "appearance": the scene texture's contrast, so that the objects stand out
GENERATOR_VERSION = 6  # bump when the pictures change, so stale sets on disk are regenerated


def _smooth_texture(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Random colour texture: a coarse random grid upsampled smoothly, plus fine noise."""
    coarse = rng.uniform(0, 255, size=(cells, cells, 3)).astype(np.float32)
    tex = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    tex += rng.normal(0, 12, size=(h, w, 3)).astype(np.float32)
    return np.clip(tex, 0, 255)


def _sprite(rng: np.random.Generator, size: int) -> dict:
    """A high-contrast object: a checker of two random colours in an ellipse or rectangle, with a
    stripe marking its orientation."""
    k = int(size * rng.uniform(0.35, 0.5))
    cells = int(rng.integers(2, 5))
    yy, xx = np.mgrid[:k, :k] / (k - 1) * 2 - 1
    checker = ((np.floor((xx + 1) * cells / 2) + np.floor((yy + 1) * cells / 2)) % 2)[..., None]
    c1, c2 = rng.uniform(0, 255, size=(2, 3))
    img = (checker * c1 + (1 - checker) * c2).astype(np.float32)
    if rng.random() < 0.5:
        mask = (xx / rng.uniform(0.8, 1.0)) ** 2 + (yy / rng.uniform(0.6, 1.0)) ** 2 <= 1.0
    else:
        mask = (np.abs(xx) <= rng.uniform(0.7, 1.0)) & (np.abs(yy) <= rng.uniform(0.5, 0.9))
    img[(np.abs(yy) < 0.15) & (xx > 0)] = rng.uniform(0, 255, size=3)
    return {"image": img, "mask": mask.astype(np.float32)}


def _travel(size: int, frames: int) -> int:
    """The farthest the camera can move from its start in ``frames`` frames (fastest speed)."""
    return int(np.ceil(SHIFT * size * SPEED_RANGE[1] * (frames - 1)))


def _appearance(rng: np.random.Generator, size: int, frames: int = 32, sprites: bool = True) -> dict:
    """Everything random about one video except its motion class (shared by all classes): a scene
    large enough for the camera's whole path (with checker objects unless ``sprites`` is false),
    and the camera's speed, sense and start pose."""
    side = 2 * (_travel(size, frames) + size) + 8
    scene = _smooth_texture(rng, side, side, max(4, round(side / (size * CELL))))
    for _ in range(max(2, round(SPRITES_PER_FRAME * side * side / (size * size))) if sprites else 0):
        sp = _sprite(rng, size)
        k = sp["image"].shape[0]
        y, x = rng.integers(0, side - k, size=2)
        alpha = sp["mask"][..., None]
        scene[y : y + k, x : x + k] = scene[y : y + k, x : x + k] * (1 - alpha) + sp["image"] * alpha
    return {
        "scene": scene,
        "speed": rng.uniform(*SPEED_RANGE),  # shared speed factor
        "side": float(rng.choice([-1.0, 1.0])),  # left/right, rotation sense
        "angle": rng.uniform(0, 360),  # start angle of the view (degrees)
        "phase": rng.uniform(0, 1),  # start of the zoom cycle
    }


def _motion(motion: int, t: int, app: dict, size: int) -> tuple[float, float, float, float]:
    """(dx, dy, angle, scale) of the picture content at frame ``t`` under class ``motion``:
    displacement in pixels (y down), rotation in degrees (positive = counter-clockwise on screen,
    as in cv2) and zoom factor."""
    shift = SHIFT * size * app["speed"]  # pixels per frame for translations
    spin = 9.0 * app["speed"]  # degrees per frame
    cycle = 0.06 * app["speed"]  # zoom cycles per frame
    dx = dy = 0.0
    angle, scale = app["angle"], 1.0
    if motion in (0, 1):  # up / down
        dy = shift * t * (-1 if motion == 0 else 1)
    elif motion == 2:  # sideways
        dx = shift * t * app["side"]
    elif motion == 3:  # rotate
        angle = app["angle"] + spin * t * app["side"]
    elif motion in (4, 5):  # expand / contract
        phase = (app["phase"] + cycle * t * (1 if motion == 4 else -1)) % 1.0
        scale = 0.7 * (1.6**phase)  # 0.7 … 1.12, log-uniform over the cycle
    else:  # diagonal up / down
        d = shift * t / np.sqrt(2)
        dx, dy = d * app["side"], d * (-1 if motion == 6 else 1)
    return dx, dy, angle, scale


def render_video(motion: int, app: dict, frames: int, size: int) -> np.ndarray:
    """uint8 (T, S, S, 3) RGB frames of the scene seen by a camera that moves with class ``motion``.

    The content moves by (dx, dy), turns by ``angle`` and zooms by ``scale`` about the frame
    centre, so the camera pans the other way over the scene (every pixel moves, which gives a
    motion signal everywhere in the frame)."""
    scene = app["scene"]
    centre = np.array([scene.shape[1], scene.shape[0]], np.float64) / 2
    half = np.array([size, size], np.float64) / 2
    out = np.empty((frames, size, size, 3), np.uint8)
    for t in range(frames):
        dx, dy, angle, scale = _motion(motion, t, app, size)
        a = np.deg2rad(angle)
        # frame pixel p shows scene point centre + R(a) (p - half - (dx, dy)) / scale: the content
        # turns counter-clockwise on screen for positive a (as in cv2) and moves by (dx, dy) on screen
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) / scale
        src = centre - rot @ (half + (dx, dy))
        m = np.hstack([rot, src[:, None]])
        frame = cv2.warpAffine(
            scene, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT
        )
        out[t] = np.clip(frame + 0.5, 0, 255).astype(np.uint8)
    return out


def _markers(rng: np.random.Generator, size: int) -> dict:
    """The event markers of an "order" video (shared by its classes): centre, radius, and each
    shape's colour (its family's hue, ``MARKER_HUES``, at a random jitter, saturation and value)."""
    radius = size * rng.uniform(0.16, 0.22)
    colours = {
        shape: _object_colour(
            {
                "hue": rng.uniform(-HUE_JITTER, HUE_JITTER),
                "saturation": rng.uniform(160, 255),
                "value": rng.uniform(160, 255),
            },
            hue,
        )
        for shape, hue in MARKER_HUES.items()
    }
    return {"colours": colours, "centre": rng.uniform(radius + 1, size - radius - 1, size=2), "radius": radius}


def event_windows(frames: int) -> list[range]:
    """The frames of the first and the second event of an "order" video: the middle three quarters
    of the first and of the last third, so each event is surrounded by marker-free frames."""
    third = frames / 3
    return [range(max(1, round(third * (k + 0.125))), round(third * (k + 0.875))) for k in (0, 2)]


def _draw_marker(frame: np.ndarray, shape: str, marker: dict) -> None:
    """Paint a disk, or a square of the same area, in place."""
    yy, xx = np.mgrid[: frame.shape[0], : frame.shape[1]] + 0.5
    (cx, cy), r = marker["centre"], marker["radius"]
    if shape == "circle":
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    else:
        half = r * np.sqrt(np.pi) / 2
        mask = (np.abs(xx - cx) <= half) & (np.abs(yy - cy) <= half)
    frame[mask] = marker["colours"][shape]


def _objects(rng: np.random.Generator, side: int, size: int) -> list[dict]:
    """The objects of an "appearance" scene (shared by its classes): one per cell of a grid over
    the scene, with a random offset, radius, orientation and colour."""
    cell = size * OBJECT_GRID
    count = int(side // cell)
    objects = []
    for i in range(count):
        for k in range(count):
            radius = cell * rng.uniform(0.28, 0.38)
            jitter = rng.uniform(-1, 1, size=2) * (cell / 2 - radius)
            objects.append(
                {
                    "centre": (np.array([k, i]) + 0.5) * cell + jitter,
                    "radius": radius,
                    "angle": rng.uniform(0, 2 * np.pi),
                    "hue": rng.uniform(-HUE_JITTER, HUE_JITTER),
                    "saturation": rng.uniform(170, 255),
                    "value": rng.uniform(150, 255),
                }
            )
    return objects


def _polygon(centre: np.ndarray, radius: float, angle: float, corners: int) -> np.ndarray:
    turns = angle + 2 * np.pi * np.arange(corners) / corners
    return centre + radius * np.stack([np.cos(turns), np.sin(turns)], axis=1)


def _bar(centre: np.ndarray, radius: float, angle: float) -> np.ndarray:
    """A rectangle 2·radius long and 0.6·radius wide, turned by ``angle``."""
    along = np.array([np.cos(angle), np.sin(angle)])
    across = np.array([-along[1], along[0]])
    return centre + np.array(
        [[a * radius, b * 0.3 * radius] for a, b in ((1, 1), (1, -1), (-1, -1), (-1, 1))]
    ) @ np.stack([along, across])


def _object_colour(obj: dict, hue: float) -> list[float]:
    """RGB of an object of a class with ``hue``: the object's own jitter, saturation and value."""
    hsv = np.array([[[(hue + obj["hue"]) % 180, obj["saturation"], obj["value"]]]], np.float32)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0].astype(float).tolist()


def _draw_shapes(scene: np.ndarray, name: str, objects: list[dict]) -> np.ndarray:
    """A copy of ``scene`` with every object drawn as class ``name``'s shape in its colour
    (anti-aliased, sub-pixel placed)."""
    out = scene.copy()
    shape, hue = name, _SHAPE_HUES[name]
    bits = 4  # cv2's fixed-point shift: coordinates in 1/16 px

    def fill(points: np.ndarray, colour) -> None:
        cv2.fillPoly(out, [np.round(points * (1 << bits)).astype(np.int32)], colour, cv2.LINE_AA, bits)

    for obj in objects:
        c, r, a, colour = obj["centre"], obj["radius"], obj["angle"], _object_colour(obj, hue)
        centre = tuple(int(v) for v in np.round(c * (1 << bits)))
        if shape == "RedDisks":
            cv2.circle(out, centre, int(r * (1 << bits)), colour, -1, cv2.LINE_AA, bits)
        elif shape == "YellowRings":
            cv2.circle(out, centre, int(0.75 * r * (1 << bits)), colour, max(2, round(r / 2.5)), cv2.LINE_AA, bits)
        elif shape == "GreenSquares":
            fill(_polygon(c, r, a, 4), colour)
        elif shape == "BlueTriangles":
            fill(_polygon(c, 1.15 * r, a, 3), colour)
        elif shape == "MagentaCrosses":
            fill(_bar(c, r, a), colour)
            fill(_bar(c, r, a + np.pi / 2), colour)
        else:  # Bars
            fill(_bar(c, 1.1 * r, a), colour)
    return out


def render_class(family: str, name: str, app: dict, frames: int, size: int) -> np.ndarray:
    """uint8 (T, S, S, 3) RGB frames of class ``name`` of ``family`` (see the module doc)."""
    if family == "motion":
        return render_video(MOTIONS.index(name), app, frames, size)
    if family == "mirrored":
        motion, side = _MIRRORED_MOTIONS[name]
        return render_video(motion, {**app, "side": side}, frames, size)
    if family == "appearance":
        scene = _draw_shapes(app["scene"], name, app["objects"])
        return render_video(app["motion"], {**app, "scene": scene}, frames, size)
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
        stream.codec_context.thread_count = 1  # deterministic output
        # ~4 bits per pixel: high quality at these tiny sizes, so codec noise stays small
        stream.bit_rate = max(200_000, 4 * frames.shape[1] * frames.shape[2] * fps)
        stream.codec_context.flags |= av.codec.context.Flags.bitexact
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)


def _drop_stale_videos(out: Path, manifest: Path, settings: dict) -> None:
    """Delete the class folders of a set made with other settings or an older generator."""
    try:
        previous = json.loads(manifest.read_text())
    except (OSError, ValueError):
        previous = None
    if previous is None or {k: v for k, v in previous.items() if k != "complete"} != settings:
        for name in {n for family_names in FAMILIES.values() for n in family_names}:
            shutil.rmtree(out / name, ignore_errors=True)


def _video_draw(rng: np.random.Generator, family: str, size: int, frames: int) -> dict:
    """Everything random about video ``j`` of a set, shared by all its classes (see the module doc)."""
    app = _appearance(rng, size, frames, sprites=family != "appearance")
    if family == "order":
        app["markers"] = _markers(rng, size)
    if family == "appearance":
        app["scene"] = 128 + BACKGROUND_CONTRAST * (app["scene"] - 128)  # objects stand out
        app["objects"] = _objects(rng, app["scene"].shape[0], size)
        app["motion"] = int(rng.integers(len(MOTIONS)))
    return app


def generate_dataset(
    out_dir: str | os.PathLike,
    *,
    num_classes: int | None = None,
    videos_per_class: int = 32,
    frames: int = 32,
    size: int = 64,
    seed: int = 0,
    fps: int = 25,
    codec: str = "mpeg4",
    test_fraction: float = 0.25,
    family: str = "motion",
) -> Path:
    """Write the synthetic dataset (see module doc); returns ``out_dir``.

    ``family`` is "motion", "mirrored", "order" or "appearance"; ``num_classes`` takes the family's first classes
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
    settings = {
        "version": GENERATOR_VERSION,
        "num_classes": num_classes,
        "videos_per_class": videos_per_class,
        "frames": frames,
        "size": size,
        "seed": seed,
        "fps": fps,
        "codec": codec,
    }
    if family != "motion":  # the default family's manifest stays as it always was
        settings["family"] = family
    manifest = out / "synthetic.json"
    _drop_stale_videos(out, manifest, settings)
    from vidnets.utils.io import atomic_write_text

    atomic_write_text(manifest, json.dumps({**settings, "complete": False}, indent=2))
    per_group = 4 if videos_per_class >= 8 else 1
    groups = int(np.ceil(videos_per_class / per_group))
    test_groups = min(max(1, int(round(groups * test_fraction))), groups - 1)
    train_lines, test_lines = [], []
    for j in range(videos_per_class):
        app = _video_draw(np.random.default_rng([seed, j]), family, size, frames)  # shared by all classes
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
