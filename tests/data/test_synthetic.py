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
    and per-class colour statistics agree."""
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
    per_class = np.array([np.mean(m, axis=0) for m in means.values()])
    assert np.abs(per_class - per_class.mean(0)).max() < 3.0  # same colours, up to codec noise


def test_cli_synth_and_check(tmp_path, capsys):
    from vidnets.cli import main

    out = tmp_path / "cli"
    assert main(["synth", str(out), "--classes", "2", "--videos-per-class", "2", "--frames", "8",
                 "--size", "32", "--seed", "1"]) == 0
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
