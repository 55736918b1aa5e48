import pickle

import pytest
import torch

from vidnets.utils.io import atomic_open, atomic_torch_save, atomic_write_text, load_checkpoint
from vidnets.utils.sharding import parse_shard, take_shard


def test_atomic_write_leaves_old_file_on_error(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w") as f:
            f.write("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temp file left


def test_checkpoint_roundtrip_is_weights_only(tmp_path):
    path = tmp_path / "ck.pt"
    atomic_torch_save({"w": torch.arange(3)}, path)
    assert torch.equal(load_checkpoint(path)["w"], torch.arange(3))


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_malicious_checkpoint_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(ValueError, match="evil.pt"):
        load_checkpoint(path)


def test_missing_checkpoint_names_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")


def test_shards_are_disjoint_and_cover():
    items = list(range(10))
    shards = [take_shard(items, i, 3) for i in range(3)]
    assert sorted(sum(shards, [])) == items
    assert parse_shard("1/4") == (1, 4)
    with pytest.raises(ValueError, match="--shard"):
        parse_shard("4/4")


def test_atomic_files_get_ordinary_permissions(tmp_path):
    import os

    target = tmp_path / "perm.txt"
    atomic_write_text(target, "x")
    mask = os.umask(0)
    os.umask(mask)
    assert (target.stat().st_mode & 0o777) == (0o666 & ~mask)
