"""T3D supervision transfer: the teacher stays frozen, the student learns the match task."""

from __future__ import annotations

import warnings

import pytest
import torch

from vidnets.engine.train import build_optimizer
from vidnets.methods.transfer import (
    SupervisionTransfer,
    TransferObjective,
    TransferSettings,
    build_teacher,
    match_pairs,
    run_stage,
    save_student,
    transfer_step,
)
from vidnets.models.densenet2d import DenseNet2d, densenet121_2d, load_torchvision_weights
from vidnets.models.t3d import densenet3d121, t3d121

pytestmark = pytest.mark.usefixtures("one_thread")


def distinct_clips(n: int, seed: int = 1) -> torch.Tensor:
    """Clips with distinct low-frequency content (pure noise pools to the same features for every clip)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.nn.functional.interpolate(
        2 * torch.randn(n, 3, 2, 2, 2, generator=g), size=(8, 32, 32), mode="trilinear"
    )
    return base + 0.1 * torch.randn(n, 3, 8, 32, 32, generator=g)


def slim_student(**kwargs):
    """DenseNet3D-121's 121-layer layout at a fraction of the width, so CPU steps take milliseconds."""
    return densenet3d121(num_classes=3, growth_rate=4, num_init_features=8, bn_size=2, **kwargs)


def slim_teacher() -> DenseNet2d:
    return DenseNet2d((6, 12, 24, 16), growth_rate=4, num_init_features=8, bn_size=2, num_classes=0)


def test_match_pairs_positives_and_cross_video_negatives():
    t = torch.arange(4.0)[:, None].expand(4, 2)
    s = 10 + torch.arange(4.0)[:, None].expand(4, 1)
    videos = torch.tensor([7, 7, 8, 9])  # clips 0 and 1 come from the same video
    pairs, targets = match_pairs(t, s, videos)
    assert targets.tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    negatives = pairs[4:]
    for row in negatives:  # every negative pairs frames and a clip of different videos
        assert videos[int(row[0])] != videos[int(row[2]) - 10]
    assert sorted(int(r[2]) - 10 for r in negatives) == [0, 1, 2, 3]
    _, only_one_video = match_pairs(t, s, torch.zeros(4, dtype=torch.long))
    assert only_one_video.tolist() == [1, 1, 1, 1]


def test_teacher_frozen_student_updated_loss_decreases():
    torch.manual_seed(0)
    model = SupervisionTransfer(slim_teacher(), slim_student(), teacher_frames=4)
    # Adam only to make "the loss falls within a dozen steps" a quick check; the CLI uses the paper's SGD.
    trainable = [p for p in model.parameters() if p.requires_grad]
    sgd = build_optimizer(model, 0.1, 0.9, 1e-4, nesterov=True)
    assert {id(p) for p in trainable} == {id(p) for p in sgd.param_groups[0]["params"]}
    optimizer = torch.optim.Adam(trainable, lr=1e-3)
    teacher_before = {k: v.clone() for k, v in model.teacher.state_dict().items()}  # incl. BN statistics
    student_before = {k: v.clone() for k, v in model.student.state_dict().items()}
    batch = {"clip": distinct_clips(6), "index": torch.arange(6)}
    losses = [transfer_step(model, batch, optimizer)["loss"] for _ in range(12)]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.005, losses
    assert all(torch.equal(v, model.teacher.state_dict()[k]) for k, v in teacher_before.items())
    assert not model.teacher.training and all(not p.requires_grad for p in model.teacher.parameters())
    changed = {k for k, v in student_before.items() if not torch.equal(v, model.student.state_dict()[k])}
    assert "conv0.weight" in changed and len(changed) > 0.5 * len(student_before)
    assert "fc.weight" not in changed  # the classifier is not part of the match task


@pytest.mark.parametrize("builder", [densenet3d121, t3d121])
def test_real_teacher_and_paper_students_on_tiny_clips(builder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        teacher = build_teacher()
    student = (
        builder(num_classes=3, growth_rate=4, num_init_features=8, bn_size=2, ttl_width=8)
        if builder is t3d121
        else slim_student()
    )
    model = SupervisionTransfer(teacher, student, teacher_frames=1)
    assert model.head.mlp[0].in_features == 1024 + student.get_classifier().in_features
    stats = model.teacher.features.norm5.running_mean.clone()
    out = transfer_step(
        model,
        {"clip": torch.randn(2, 3, 8, 32, 32), "index": torch.tensor([0, 1])},
        build_optimizer(model, 0.01, 0.9, 1e-4),
    )
    assert out["pairs"] == 4 and torch.isfinite(torch.tensor(out["loss"]))
    assert torch.equal(stats, model.teacher.features.norm5.running_mean)


def test_teacher_is_torchvision_densenet121():
    net = densenet121_2d()
    keys = net.state_dict()
    assert sum(p.numel() for p in net.parameters()) == 7_978_856  # torchvision densenet121
    for key in (
        "features.conv0.weight",
        "features.denseblock4.denselayer16.conv2.weight",
        "features.transition3.norm.running_var",
        "features.norm5.bias",
        "classifier.weight",
    ):
        assert key in keys
    net.eval()
    x = torch.randn(2, 3, 32, 32)
    assert net.forward_head(net.forward_features(x), pre_logits=True).shape == (2, 1024)
    net.reset_classifier(5)
    assert net(x).shape == (2, 5) and "classifier.weight" in net.state_dict()


def test_teacher_without_weights_warns():
    with pytest.warns(UserWarning, match="random teacher"):
        build_teacher()


def test_teacher_loads_torchvision_layout_including_old_keys(tmp_path):
    source = densenet121_2d()
    state = source.state_dict()
    old = {
        k.replace("norm1", "norm.1").replace("conv2", "conv.2") if "denselayer" in k else k: v for k, v in state.items()
    }
    torch.save(old, tmp_path / "densenet121.pth")
    teacher = build_teacher(tmp_path / "densenet121.pth")
    assert torch.equal(
        teacher.features.denseblock2.denselayer3.norm1.weight, source.features.denseblock2.denselayer3.norm1.weight
    )
    torch.save({"features.conv0.weight": state["features.conv0.weight"]}, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match="partial.pth"):
        load_torchvision_weights(densenet121_2d(), tmp_path / "partial.pth")


def test_student_checkpoint_loads_for_finetuning(tmp_path):
    from vidnets.engine.checkpoint import read_checkpoint
    from vidnets.models import create

    student = slim_student()
    kwargs = {"num_classes": 3, "growth_rate": 4, "num_init_features": 8, "bn_size": 2}
    save_student(student, tmp_path / "student.pt", "densenet3d121", kwargs)
    state = read_checkpoint(tmp_path / "student.pt")
    rebuilt = create(state["model_name"], **state["model_kwargs"])
    rebuilt.load_state_dict(state["model"])
    assert torch.equal(rebuilt.conv0.weight, student.conv0.weight)


def test_transfer_command_on_synthetic_videos(tmp_path, capsys):
    from vidnets.cli import main
    from vidnets.data.datasets import load_annotations
    from vidnets.data.synthetic import generate_dataset
    from vidnets.engine.checkpoint import read_checkpoint

    root = generate_dataset(tmp_path / "synth", num_classes=2, videos_per_class=3, frames=12, size=32)
    out = tmp_path / "student.pt"
    args = [
        "transfer",
        "--root",
        str(root),
        "--student",
        "densenet3d121",
        "--frames",
        "8",
        "--size",
        "32",
        "--crop",
        "32",
        "--teacher-frames",
        "2",
        "--batch-size",
        "2",
        "--max-steps",
        "2",
        "--lr",
        "0.01",
        "--device",
        "cpu",
        "-o",
        str(out),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no ImageNet weights here: random teacher
        assert main([*args, "--finetune-epochs", "1"]) == 0
    text = capsys.readouterr().out
    assert "transfer: 2 steps" in text and "fine-tune" in text
    state = read_checkpoint(out)
    assert state["model_name"] == "densenet3d121" and state["model_kwargs"] == {"num_classes": 2}
    assert state["class_names"] == load_annotations("ucf101", root)[1]
    progress = read_checkpoint(f"{out}.transfer/last.pt")
    assert (progress["epoch"], progress["step"]) == (1, 2)
    assert (tmp_path / "student.pt.finetune" / "last.pt").is_file()  # the fine-tune ran in the Trainer
    # a rerun resumes from the saved transfer state: the step budget is spent, nothing is redone
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(args) == 0
    assert "resuming" in capsys.readouterr().out and read_checkpoint(f"{out}.transfer/last.pt")["step"] == 2


def test_transfer_with_the_cpu_profile_starts_the_cpu_profile(tmp_path, capsys):
    """``--profile cpu`` builds the t3d CPU profile's student, so ``vidnets train t3d --profile cpu``
    starts from it; the profile's 28² crops are raised to the teacher's 32² minimum, and an explicit
    smaller crop is one line and exit 2."""
    from vidnets.cli import main
    from vidnets.data.synthetic import generate_dataset
    from vidnets.engine.checkpoint import read_checkpoint
    from vidnets.engine.config import load_config

    root = generate_dataset(tmp_path / "synth", num_classes=2, videos_per_class=8, frames=16, size=32)
    out = tmp_path / "student.pt"
    args = ["transfer", "--profile", "cpu", "--root", str(root), "--max-steps", "1", "--device", "cpu", "-o", str(out)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no ImageNet weights here: random teacher
        assert main(args) == 0
    assert "raised to it" in capsys.readouterr().out
    profile = load_config("t3d", profile="cpu").model
    state = read_checkpoint(out)
    assert state["model_name"] == profile.name == "t3d121"
    assert state["model_kwargs"] == {"num_classes": 2, **profile.kwargs}
    run = ["train", "t3d", "--profile", "cpu", "--out", str(tmp_path / "run"), "--set", f"data.root={root}"]
    quick = ["train.epochs=1", "train.progress=false", "train.tensorboard=false", f"model.pretrained={out}"]
    assert main([*run, *[a for q in quick for a in ("--set", q)]]) == 0
    assert main([*args[:-1], str(tmp_path / "other.pt"), "--crop", "28", "--size", "32"]) == 2
    assert "too small for the 2D DenseNet-121 teacher" in capsys.readouterr().err
    assert main([*args[:-1], str(tmp_path / "other.pt"), "--student", "densenet3d121"]) == 2


class ClipSet(torch.utils.data.Dataset):
    """Six distinct clips of three videos, as the data recipes return them."""

    def __init__(self):
        self.clips = distinct_clips(6)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict:
        return {"clip": self.clips[i], "label": i % 3, "index": i // 2, "path": f"v{i // 2}.avi"}


def test_transfer_runs_in_the_trainer_and_resumes(tmp_path):
    """The match task is the Trainer's loop with TransferObjective: teacher frozen, student trained,
    checkpoints resumable, and a finished stage is not redone."""
    torch.manual_seed(0)
    model = SupervisionTransfer(slim_teacher(), slim_student(), teacher_frames=2)
    teacher_before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    conv_before = model.student.conv0.weight.detach().clone()
    settings = TransferSettings(
        "densenet3d121", str(tmp_path / "run"), epochs=2, lr=0.01, batch_size=3, device="cpu", progress=False
    )
    result = run_stage(
        model, ClipSet(), ["a", "b", "c"], settings, model_name="supervision_transfer", objective=TransferObjective()
    )
    assert (result.epochs, result.step) == (2, 4)
    assert 0.0 <= result.history[-1]["train_acc"] <= 1.0  # the match accuracy
    assert all(torch.equal(v, model.teacher.state_dict()[k].cpu()) for k, v in teacher_before.items())
    assert not torch.equal(conv_before, model.student.conv0.weight.detach())
    again = run_stage(
        model, ClipSet(), ["a", "b", "c"], settings, model_name="supervision_transfer", objective=TransferObjective()
    )
    assert again.step == 4  # resumed from last.pt: the budget is spent
