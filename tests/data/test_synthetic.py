"""Synthetic motion-only data: determinism, class-free appearance, CLI."""

from __future__ import annotations

import json

import numpy as np

from vidnets.data.datasets import load_annotations
from vidnets.data.synthetic import generate_dataset
from vidnets.data.video import probe, read_all_frames


def _decode_all(root):
    recs, _ = load_annotations("ucf101", root)
    return {r.path.split(str(root))[-1]: read_all_frames(r.path) for r in recs}


def test_same_seed_same_frames(tmp_path, synth_dir):
    again = generate_dataset(tmp_path / "again", num_classes=4, videos_per_class=4, frames=20, size=32, seed=3)
    a, b = _decode_all(synth_dir), _decode_all(again)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    other = generate_dataset(tmp_path / "other", num_classes=4, videos_per_class=4, frames=20, size=32, seed=4)
    c = _decode_all(other)
    assert any(not np.array_equal(a[k], c[k]) for k in a)


def test_appearance_carries_no_class_information(synth_dir):
    """Video j looks the same in every class at frame 0; later frames differ only by motion,
    and per-class colour statistics agree within their sampling spread."""
    recs, classes = load_annotations("folder", synth_dir)
    by_clip: dict[str, list] = {}
    for r in recs:
        clip_id = r.path.rsplit("_g", 1)[1]
        by_clip.setdefault(clip_id, []).append(read_all_frames(r.path))
    means = {c: [] for c in range(len(classes))}
    for clips in by_clip.values():
        assert len(clips) == len(classes)
        for c, frames in enumerate(clips):
            np.testing.assert_array_equal(frames[0], clips[0][0])  # identical first frame
            means[c].append(frames.reshape(-1, 3).mean(0))
            assert not np.array_equal(frames[-1], clips[(c + 1) % len(clips)][-1])  # motion differs
    # each class sees other parts of the same kind of scene: its mean colour differs from the
    # others' only by the sampling spread of its videos (3 standard errors), never by the class
    per_class = np.array([np.mean(m, axis=0) for m in means.values()])
    stderr = np.array([np.std(m, axis=0) for m in means.values()]).mean(0) / np.sqrt(len(by_clip))
    assert (np.abs(per_class - per_class.mean(0)) < 3 * stderr + 1.0).all()


def test_cli_synth_and_check(tmp_path, capsys):
    from vidnets.cli import main

    out = tmp_path / "cli"
    assert (
        main(
            [
                "synth",
                str(out),
                "--classes",
                "2",
                "--videos-per-class",
                "2",
                "--frames",
                "8",
                "--size",
                "32",
                "--seed",
                "1",
            ]
        )
        == 0
    )
    assert probe(next(out.rglob("*.avi"))).num_frames == 8
    capsys.readouterr()
    assert main(["check", str(out), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 4 and all(r["num_frames"] == 8 and r["codec"] == "mpeg4" for r in rows)
    (out / "broken.mp4").write_text("not a video")
    assert main(["check", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "BAD" in printed and "broken.mp4" in printed and printed.count("ok ") == 4


def test_regenerates_when_settings_change(tmp_path):
    out = generate_dataset(tmp_path / "s", num_classes=2, videos_per_class=2, frames=6, size=32, seed=0)
    first = next(out.rglob("*.avi"))
    assert probe(first).num_frames == 6
    mtime = first.stat().st_mtime_ns
    generate_dataset(out, num_classes=2, videos_per_class=2, frames=6, size=32, seed=0)
    assert first.stat().st_mtime_ns == mtime  # same settings: reused
    generate_dataset(out, num_classes=2, videos_per_class=2, frames=9, size=32, seed=0)
    assert probe(first).num_frames == 9  # other settings: rewritten


def test_mirrored_family_pairs_share_appearance(tmp_path):
    from vidnets.data.synthetic import MIRROR_PAIRS, MIRRORED

    out = generate_dataset(tmp_path / "m", family="mirrored", videos_per_class=2, frames=6, size=32, seed=0)
    assert (out / "classInd.txt").read_text().split()[1::2] == list(MIRRORED)
    assert all(MIRROR_PAIRS[MIRROR_PAIRS[a]] == a for a in MIRROR_PAIRS)
    left, right = (read_all_frames(str(out / c / f"v_{c}_g01_c01.avi")) for c in ("MoveLeft", "MoveRight"))
    np.testing.assert_array_equal(left[0], right[0])  # same picture at frame 0
    assert not np.array_equal(left[-1], right[-1])  # opposite drift afterwards


def test_order_family_differs_only_in_event_order(tmp_path):
    """Both classes show each marker for the same frames in total; frame 0 and the marker-free
    middle third are the same pictures; the first event of one class is the last of the other."""
    from vidnets.data.synthetic import event_windows

    out = generate_dataset(tmp_path / "o", family="order", videos_per_class=2, frames=24, size=32, seed=0)
    a, b = (read_all_frames(str(out / c / f"v_{c}_g01_c01.avi")) for c in ("CircleThenSquare", "SquareThenCircle"))
    first, second = event_windows(24)
    assert first.start >= 1 and second.start - first.stop >= 24 // 3  # events far apart
    np.testing.assert_array_equal(a[0], b[0])
    middle = slice(first.stop, second.start)
    # codec noise only (measured 1.5 of 255): the P-frames after an event carry a trace of its marker
    assert np.abs(a[middle].astype(int) - b[middle].astype(int)).mean() < 2.5
    changed = lambda x, y, w: np.abs(x[w.start : w.stop].astype(int) - y[w.start : w.stop].astype(int)).mean()
    assert changed(a, b, first) > 2 and changed(a, b, second) > 2  # disk and square differ at the corners
    np.testing.assert_allclose(a.reshape(-1, 3).mean(0), b.reshape(-1, 3).mean(0), atol=2.0)


def test_unknown_family_is_one_line_cli_error(tmp_path, capsys):
    from vidnets.cli import main

    assert main(["synth", str(tmp_path / "x"), "--family", "order", "--classes", "3"]) == 2
    assert "num_classes must be 2..2" in capsys.readouterr().err


def test_appearance_family_is_deterministic_and_cli_made(tmp_path):
    from vidnets.cli import main

    out = tmp_path / "cli"
    assert (
        main(
            [
                "synth",
                str(out),
                "--family",
                "appearance",
                "--classes",
                "3",
                "--videos-per-class",
                "2",
                "--frames",
                "8",
                "--size",
                "32",
                "--seed",
                "5",
            ]
        )
        == 0
    )
    assert (out / "classInd.txt").read_text().split()[1::2] == ["RedDisks", "GreenSquares", "BlueTriangles"]
    again = generate_dataset(
        tmp_path / "again", family="appearance", num_classes=3, videos_per_class=2, frames=8, size=32, seed=5
    )
    a, b = _decode_all(out), _decode_all(again)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    other = _decode_all(
        generate_dataset(
            tmp_path / "other", family="appearance", num_classes=3, videos_per_class=2, frames=8, size=32, seed=6
        )
    )
    assert any(not np.array_equal(a[k], other[k]) for k in a)


def test_appearance_family_every_frame_carries_the_class(tmp_path):
    """Video j of every class follows the same camera path over the same scene: in every frame the
    classes agree on most pixels (background, motion) and differ where the objects are, which
    are different shapes in different colours; the camera does move."""
    from vidnets.data.synthetic import SHAPES

    out = generate_dataset(tmp_path / "a", family="appearance", videos_per_class=2, frames=12, size=32, seed=0)
    videos = [read_all_frames(str(out / c / f"v_{c}_g01_c01.avi")).astype(int) for c in SHAPES]
    for i, first in enumerate(videos):
        assert np.abs(first[-1] - first[0]).mean() > 10  # the view moves
        for second in videos[i + 1 :]:
            diff = np.abs(first - second).max(axis=-1)  # (T, H, W)
            same = (diff < 12).mean(axis=(1, 2))
            differ = (diff > 40).mean(axis=(1, 2))
            assert (same > 0.3).all() and (differ > 0.006).all(), (same.min(), differ.min())


def test_appearance_family_objects_take_their_class_hue(tmp_path):
    """Each class's objects are drawn in its own hue (jittered by at most HUE_JITTER): the
    strongly saturated pixels of a class's video sit around that hue."""
    import cv2

    from vidnets.data.synthetic import _SHAPE_HUES, HUE_JITTER, SHAPES

    out = generate_dataset(tmp_path / "a", family="appearance", videos_per_class=2, frames=4, size=32, seed=0)
    for name in SHAPES:
        frames = read_all_frames(str(out / name / f"v_{name}_g01_c01.avi"))
        hsv = cv2.cvtColor(frames.reshape(-1, 32, 3), cv2.COLOR_RGB2HSV).reshape(-1, 3).astype(int)
        saturated = hsv[(hsv[:, 1] > 170) & (hsv[:, 2] > 150)]
        distance = np.abs((saturated[:, 0] - _SHAPE_HUES[name] + 90) % 180 - 90)  # on the hue circle
        assert len(saturated) > 50 and np.median(distance) <= HUE_JITTER + 4, (name, len(saturated))
