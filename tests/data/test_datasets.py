"""Annotation formats, the metadata cache, and skipping/looping bad videos through a DataLoader."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vidnets.data.cache import MetadataCache
from vidnets.data.datasets import EpochReport, VideoDataset, VideoRecord, collate_skip_bad, load_annotations
from vidnets.data.frames import count_frames, read_frame_folder
from vidnets.data.presets import build_dataset
from vidnets.data.sampling import ClipSampler
from vidnets.data.transforms import CenterCrop, ClipTransform


def test_ucf101_splits(synth_dir):
    train, classes = load_annotations("ucf101", synth_dir)
    test, _ = load_annotations("ucf101", synth_dir, subset="test")
    assert classes == ["MoveUp", "MoveDown", "MoveSideways", "Rotate"]
    assert len(train) + len(test) == 16 and len(test) > 0
    assert not {r.path for r in train} & {r.path for r in test}
    for r in train + test:
        assert os.path.isfile(r.path) and classes[r.label] in r.path


def test_hmdb51_splits(tmp_path):
    ann = tmp_path / "splits"
    ann.mkdir()
    (ann / "climb_test_split1.txt").write_text("a.avi 1\nb.avi 2\nc.avi 0\n")
    (ann / "punch_test_split1.txt").write_text("d.avi 2\ne.avi 1\n")
    (ann / "punch_test_split2.txt").write_text("d.avi 1\n")
    train, classes = load_annotations("hmdb51", tmp_path / "videos", annotations=ann)
    test, _ = load_annotations("hmdb51", tmp_path / "videos", annotations=ann, subset="test")
    assert classes == ["climb", "punch"]
    assert [(os.path.basename(r.path), r.label) for r in train] == [("a.avi", 0), ("e.avi", 1)]
    assert [(os.path.basename(r.path), r.label) for r in test] == [("b.avi", 0), ("d.avi", 1)]
    assert train[0].path == str(tmp_path / "videos" / "climb" / "a.avi")


def test_kinetics_csv_and_path_label_csv(tmp_path):
    (tmp_path / "tai_chi").mkdir()
    (tmp_path / "tai_chi" / "Kop0sDqOn-c_000010_000020.mp4").write_bytes(b"x")
    csv_file = tmp_path / "k.csv"
    csv_file.write_text(
        "label,youtube_id,time_start,time_end,split\n"
        "tai chi,Kop0sDqOn-c,10,20,train\narm wrestling,abc,0,10,train\n"
        "tai chi,zzz,5,15,val\n"
    )
    train, classes = load_annotations("kinetics", tmp_path, annotations=csv_file)
    assert classes == ["arm wrestling", "tai chi"]
    assert train[0].path == str(tmp_path / "tai_chi" / "Kop0sDqOn-c_000010_000020.mp4")
    assert train[1].path == str(tmp_path / "arm wrestling" / "abc_000000_000010.mp4")
    val, _ = load_annotations("kinetics", tmp_path, annotations=csv_file, subset="val")
    assert len(val) == 1 and val[0].label == 0
    simple = tmp_path / "simple.csv"
    simple.write_text("path,label\nx/a.mp4,dog\ny/b.mp4,cat\n")
    recs, classes = load_annotations("kinetics", tmp_path, annotations=simple)
    assert classes == ["cat", "dog"] and [r.label for r in recs] == [1, 0]
    bad = tmp_path / "bad.csv"
    bad.write_text("foo,bar\n1,2\n")
    with pytest.raises(ValueError, match="bad.csv"):
        load_annotations("kinetics", tmp_path, annotations=bad)


def test_folder_layout(synth_dir):
    recs, classes = load_annotations("folder", synth_dir)
    assert len(recs) == 16 and classes == sorted(classes)


def test_rawframes_flow_resize_scales_the_vectors(tmp_path):
    """Flow JPEGs of (dx, dy) = (8, -4) px at 4 levels per px, 64×80 read at 32×40: (4, -2) px."""
    import cv2

    for i in (1, 2):
        cv2.imwrite(
            str(tmp_path / f"flow_x_{i:05d}.jpg"), np.full((64, 80), 159.5, np.float32).round().astype(np.uint8)
        )
        cv2.imwrite(
            str(tmp_path / f"flow_y_{i:05d}.jpg"), np.full((64, 80), 111.5, np.float32).round().astype(np.uint8)
        )
    full = read_frame_folder(tmp_path, [0, 1], modality="flow")
    half = read_frame_folder(tmp_path, [0, 1], modality="flow", size=(32, 40))
    assert half.shape == (2, 32, 40, 2)
    full_px = (full.astype(float) - 127.5).mean(axis=(0, 1, 2)) / 4
    half_px = (half.astype(float) - 127.5).mean(axis=(0, 1, 2)) / 4
    np.testing.assert_allclose(half_px, full_px / 2, atol=0.15)


def test_rawframes(shared_videos, tmp_path):
    src = shared_videos / "mmaction2" / "rawframes_test_avi"
    assert count_frames(src) == 10 and count_frames(src, "flow") == 5
    rgb = read_frame_folder(src, [0, 9])
    assert rgb.shape == (2, 240, 320, 3) and rgb.dtype == np.uint8
    flow = read_frame_folder(src, [0, 4], modality="flow", size=64)
    assert flow.shape == (2, 64, 85, 2)
    assert abs(float(flow.mean()) - 128) < 20  # quantised around 128 = no motion
    (tmp_path / "apply_eye_makeup").mkdir()
    os.symlink(src, tmp_path / "apply_eye_makeup" / "v_test")
    recs, classes = load_annotations("rawframes", tmp_path)
    assert classes == ["apply_eye_makeup"] and len(recs) == 1
    ds = build_dataset("c3d", recs, train=True, frames=8, size=64, crop=56)
    item = ds[0]
    assert item["clip"].shape == (3, 8, 56, 56) and "looped" not in item
    looped = build_dataset("c3d", recs, train=True, size=64, crop=56)[0]  # 16 > 10 frames
    assert looped["looped"] and looped["clip"].shape == (3, 16, 56, 56)
    # the decoded raw frames match the video's own frames closely (JPEG vs MPEG-4 noise)
    from vidnets.data.video import read_frames

    vid = read_frames(shared_videos / "mmaction2" / "test.avi", [0, 9]).astype(float)
    assert np.abs(vid - rgb.astype(float)).mean() < 12


def test_metadata_cache(tmp_path, synth_dir):
    files = [str(p) for p in sorted(synth_dir.rglob("*.avi"))[:4]]
    bad = tmp_path / "bad.mp4"
    bad.write_text("nope")
    cache = MetadataCache(tmp_path / "meta.json")
    first = cache.get_many(files + [str(bad)], workers=2)
    assert cache.probed == 5 and first[str(bad)]["error"]
    assert first[files[0]]["num_frames"] == 20 and first[files[0]]["codec"] == "mpeg4"
    again = MetadataCache(tmp_path / "meta.json")
    assert again.get_many(files + [str(bad)]) == first and again.probed == 0
    copy = tmp_path / "copy.avi"
    shutil.copy(files[0], copy)
    again.get(copy)
    os.utime(copy, ns=(1, 1))  # a changed mtime invalidates the entry
    again.get(copy)
    assert again.probed == 2


def _tiny_dataset(records, **kw):
    transform = ClipTransform([CenterCrop(24)], mean=(0,) * 3, std=(1,) * 3)
    return VideoDataset(records, ClipSampler(8), transform, decode_size=32, **kw)


def test_bad_videos_are_skipped_and_reported_with_workers(tmp_path, synth_dir):
    good, _ = load_annotations("ucf101", synth_dir)
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    text = tmp_path / "text.mp4"
    text.write_text("hello")
    short = tmp_path / "short.avi"
    from vidnets.data.synthetic import write_video

    write_video(short, np.zeros((3, 32, 32, 3), np.uint8))
    records = good[:5] + [
        VideoRecord(str(tmp_path / "missing.avi"), 0),
        VideoRecord(str(empty), 1),
        VideoRecord(str(text), 2),
        VideoRecord(str(short), 3),
    ]
    ds = _tiny_dataset(records)
    loader = DataLoader(ds, batch_size=3, num_workers=2, collate_fn=collate_skip_bad)
    report = EpochReport()
    seen = 0
    for batch in loader:
        report.update(batch)
        seen += batch["label"].numel()
        if batch["label"].numel():
            assert batch["clip"].shape[1:] == (3, 8, 24, 24) and batch["label"].dtype == torch.long
    assert seen == 6 and report.skip_count == 3 and report.loop_count == 1
    text_report = report.format()
    for name in ("missing.avi", "empty.avi", "text.mp4", "short.avi"):
        assert name in text_report
    with pytest.raises(Exception, match="missing.avi"):
        _tiny_dataset(records, on_error="raise")[5]


def test_all_bad_batch_collates_empty(tmp_path):
    ds = _tiny_dataset([VideoRecord(str(tmp_path / "gone.avi"), 0)])
    batch = collate_skip_bad([ds[0]])
    assert batch["clip"].numel() == 0 and batch["label"].numel() == 0 and batch["skipped"]


def test_cache_marks_bad_files_up_front(tmp_path, synth_dir):
    good, _ = load_annotations("ucf101", synth_dir)
    bad = tmp_path / "bad.avi"
    bad.write_text("x")
    ds = _tiny_dataset(good[:2] + [VideoRecord(str(bad), 0)], cache=MetadataCache(None))
    assert list(ds.bad) == [str(bad)] and ds.records[0].num_frames == 20
    assert "error" in ds[2] and "clip" in ds[0]


def test_cache_probes_each_real_file_once_through_symlinks(tmp_path, synth_dir):
    real = [str(p) for p in sorted(synth_dir.rglob("*.avi"))[:2]]
    links = []
    for i in range(40):  # a folder of links, several per target, and repeated path strings
        link = tmp_path / f"link{i}.avi"
        link.symlink_to(real[i % 2])
        links += [str(link), str(link)]
    cache = MetadataCache(tmp_path / "meta.json")
    metas = cache.get_many(links + real, workers=2)
    assert cache.probed == 2 and len(metas) == 42
    assert {m["num_frames"] for m in metas.values()} == {20}
    again = MetadataCache(tmp_path / "meta.json")
    again.get_many(links + real)
    assert again.probed == 0


def test_training_builds_its_datasets_through_the_cache(tmp_path, synth_dir, monkeypatch):
    from vidnets.engine.build import build_datasets, metadata_cache
    from vidnets.engine.config import load_config

    monkeypatch.setenv("VIDNETS_CACHE", str(tmp_path / "cache"))
    cfg = load_config(None, [f"data.root={synth_dir}", "train.epochs=1", "schedule.kind=constant"])
    train_set, test_set, _ = build_datasets(cfg)
    assert all(r.num_frames == 20 for r in train_set.records + test_set.records)
    assert metadata_cache(cfg).path.is_file() and metadata_cache(cfg).path.parent == tmp_path / "cache"
    off = load_config(
        None, [f"data.root={synth_dir}", "train.epochs=1", "schedule.kind=constant", "data.metadata_cache=null"]
    )
    assert build_datasets(off)[0].records[0].num_frames is None


def test_an_unwritable_cache_only_warns(tmp_path, synth_dir):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache = MetadataCache(blocker / "meta.json")  # its folder cannot be created
    with pytest.warns(UserWarning, match="not written"):
        metas = cache.get_many([str(p) for p in sorted(synth_dir.rglob("*.avi"))[:2]])
    assert all(m["num_frames"] == 20 for m in metas.values())
