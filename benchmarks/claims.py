"""The papers' claims in miniature: ``python -m benchmarks.claims`` trains the recipes' CPU profiles
(``vidnets train RECIPE --profile cpu``) on ``vidnets synth`` data and writes CLAIMS.md.

``tests/bench/test_claims.py`` asserts the first four comparisons below with these same runs
(:func:`runs_for`); this module measures and reports them all. Every run goes through the CLI,
as a user would, with ``train.seed`` = the seed (initialisation, sampling, augmentation); the data
are made once (:func:`make_data`) and stay the same for every seed:

* ``motion``: 4 classes × 32 videos (96 train, 32 test) of 16 frames at 32²; the class is how the
  view moves, a single frame is at chance (:mod:`vidnets.data.synthetic`). Its DIS optical flow,
  extracted at a short side of 72 (CNN-M's pools need crops of at least 64²).
* ``order``: 2 classes × 32 videos (48 train, 16 test) of 24 frames at 32² that differ only in
  the order of two events far apart (a red disk, then a blue square, or the reverse).

The comparisons:

* **Two-Stream** (motion): the temporal stream (CNN-M on 10 stacked flow fields, the paper's
  per-field mean subtraction off, because these classes are camera motions, which it removes by
  design) against the spatial stream (CNN-M on one RGB frame), and their average fusion
  (``vidnets fuse --preset two-stream``: the softmax scores averaged 1 : 1, Two-Stream §2).
* **Res3D** (motion): res3d10 with 3D convolutions on 8-frame clips against its 2D twin
  (``conv_types=2d`` on single frames, the scores of 4 frames averaged per video).
* **C3D** (motion): C3D's profile (3×3×3 kernels, 16-frame clips) against the same net with 1×3×3
  kernels, the paper's depth-1 net (§3.2, "equivalent to 2D convolutions on separate frames");
  and, reported only, the 3D net's fc6 features with a linear SVM (``vidnets features`` and
  ``vidnets svm``, C3D's protocol) against its own softmax.
* **TSN** (order): K=3 segments with the ``weighted`` consensus against the same net trained on
  one snippet per video (K=1, tested on 25 snippets averaged, TSN's single-snippet protocol), 24
  epochs each. ``avg`` and ``max`` consensus are symmetric in the segments, so on these classes
  they are at chance by construction (see the order family's docstring).
* **P3D** (motion), reported only: the mixed A→B→C network against single-type A, B and C.
* **T3D** (motion), reported only: the T3D profile started from a student of supervision transfer
  (``vidnets transfer --profile cpu``, 12 epochs on the training videos at 32² crops, against a
  DenseNet-121 teacher without ImageNet weights, which are not stored here) against the same
  profile from scratch; both then train the profile's 36 epochs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

CPU_NAME = "2-vCPU Intel Xeon with AMX (KVM guest)"
CLAIMS = ("two_stream", "res3d", "c3d", "tsn", "p3d", "t3d")
SEEDS = (0, 1, 2)
MOTION = dict(num_classes=4, videos_per_class=32, frames=16, size=32, seed=0)
ORDER = dict(family="order", videos_per_class=32, frames=24, size=32, seed=0)
FLOW_SHORT_SIDE = 72

NO_MEAN_SUBTRACTION = ("data.train_kwargs.mean_subtraction=false", "data.test_kwargs.mean_subtraction=false")
RES3D_TWO_D = (
    "model.kwargs.conv_types=2d",
    "data.train_kwargs.frames=1",
    "data.train_kwargs.stride=1",
    "data.test_kwargs.frames=1",
    "data.test_kwargs.stride=1",
    "data.test_kwargs.views=4",
)
C3D_TWO_D = ("model.kwargs.temporal_depths=1",)
TSN_BUDGET = ("train.epochs=24", "schedule.milestones=[18]")
TSN_K3 = ("model.kwargs.consensus=weighted", *TSN_BUDGET)
TSN_K1 = ("model.kwargs.num_segments=1", "data.train_kwargs.segments=1", "data.test_kwargs.views=25", *TSN_BUDGET)
T3D_TRANSFER_EPOCHS = 12
P3D_TYPES = {"P3D A→B→C (mixed)": "ABC", "P3D-A": "A", "P3D-B": "B", "P3D-C": "C"}

NOT_RUN: dict[str, str] = {}


@dataclass(frozen=True)
class ClaimData:
    motion: Path
    flow: Path
    order: Path


@dataclass(frozen=True)
class Run:
    """One ``vidnets train RECIPE --profile cpu --out OUT --set train.seed=SEED --set …`` run."""

    recipe: str
    out: Path
    seed: int
    sets: tuple[str, ...] = ()


def make_data(base: Path) -> ClaimData:
    """The claims' data under ``base`` (reused when already there and current)."""
    from vidnets.data.synthetic import generate_dataset

    motion = generate_dataset(base / "motion", **MOTION)
    return ClaimData(motion, extract_flow(motion, base / "motion_flow"), generate_dataset(base / "order", **ORDER))


def extract_flow(root: Path, out: Path) -> Path:
    """DIS optical flow of every video of a synthetic set (``vidnets flow extract``, short side
    ``FLOW_SHORT_SIDE``; resumable, so a finished folder is reused); ``out``."""
    from vidnets.cli import main

    videos = sorted(str(p) for p in root.glob("*/*.avi"))
    options = ["--out", str(out), "--method", "dis", "--short-side", str(FLOW_SHORT_SIDE)]
    if main(["-q", "flow", "extract", *videos, *options]) != 0:
        raise RuntimeError(f"flow extraction into {out} failed")
    return out


def runs_for(claim: str, data: ClaimData, out: Path, seed: int) -> dict[str, Run]:
    """The runs of one claim at one seed, by the name CLAIMS.md gives them."""
    motion, order = f"data.root={data.motion}", f"data.root={data.order}"

    def run(recipe: str, name: str, *sets: str) -> Run:
        return Run(recipe, out / f"{claim}_{name}_{seed}", seed, tuple(sets))

    if claim == "two_stream":
        return {
            "spatial stream (RGB frame)": run("two_stream_spatial", "spatial", motion),
            "temporal stream (flow stack)": run(
                "two_stream_temporal", "temporal", motion, f"data.flow_root={data.flow}", *NO_MEAN_SUBTRACTION
            ),
        }
    if claim == "res3d":
        return {
            "res3d10 3D, 8-frame clips": run("res3d", "3d", motion),
            "res3d10 2D twin, single frames": run("res3d", "2d", motion, *RES3D_TWO_D),
        }
    if claim == "c3d":
        return {
            "C3D 3×3×3 (3D)": run("c3d", "3d", motion),
            "C3D 1×3×3 (2D twin)": run("c3d", "2d", motion, *C3D_TWO_D),
        }
    if claim == "tsn":
        return {
            "TSN K=3, weighted consensus": run("tsn_rgb", "k3", order, *TSN_K3),
            "TSN K=1 (single snippet)": run("tsn_rgb", "k1", order, *TSN_K1),
        }
    if claim == "t3d":
        student = _student_path(out, seed)
        return {
            "T3D from scratch": run("t3d", "scratch", motion),
            "T3D after supervision transfer": run("t3d", "transfer", motion, f"model.pretrained={student}"),
        }
    if claim == "p3d":
        return {
            name: run("p3d", types, motion, f"model.kwargs.block_types={types}") for name, types in P3D_TYPES.items()
        }
    raise ValueError(f"unknown claim {claim!r}; expected one of {', '.join(CLAIMS)}")


def train_profile(run: Run) -> dict:
    """Train and test ``run`` with ``vidnets train`` in a child process on one intra-op thread; its
    test metrics (``test_metrics.json``, or ``{}`` for a multi-task run, which writes one per task).

    A finished run in ``run.out`` whose saved ``config.yaml`` is the one this run would write is
    reused, so an interrupted benchmark picks up where it stopped; any other content is replaced."""
    report = run.out / "test_metrics.json"
    if not finished(run):
        args = ["-q", "train", run.recipe, "--profile", "cpu", "--out", str(run.out), "--overwrite"]
        run_cli([*args, *(a for value in _sets(run) for a in ("--set", value))])
    return json.loads(report.read_text()) if report.exists() else {}


def run_seconds(run: Run) -> float:
    """Training plus testing time of a finished run, from its ``epochs.csv`` and test report."""
    import csv

    with open(run.out / "epochs.csv", newline="") as f:
        trained = float(list(csv.DictReader(f))[-1]["seconds"])
    return trained + float(json.loads((run.out / "test_metrics.json").read_text()).get("seconds", 0.0))


def finished(run: Run) -> bool:
    """True when ``run.out`` holds a finished run with the very config this run would write."""
    from vidnets.engine.config import dump_config, load_config

    saved, report = run.out / "config.yaml", run.out / "test_metrics.json"
    if not (saved.exists() and report.exists()):
        return False
    expected = load_config(run.recipe, [*_sets(run), f"train.out_dir={run.out}"], profile="cpu")
    return saved.read_text() == dump_config(expected)


def _sets(run: Run) -> tuple[str, ...]:
    return ("train.progress=false", "train.tensorboard=false", f"train.seed={run.seed}", *run.sets)


def run_cli(args: list[str]) -> None:
    """``vidnets ARGS`` in a child process on one intra-op thread; raises with its stderr on failure."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "vidnets", *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"vidnets {' '.join(args)} exited with {done.returncode}:\n{done.stderr[-3000:]}")


def transfer_student(data: ClaimData, out: Path, seed: int) -> Path:
    """T3D's supervision transfer at CPU scale (``vidnets transfer --profile cpu``) on the motion
    set's training videos; the student checkpoint. The teacher is DenseNet-121 without ImageNet
    weights (none are stored here), so what the student learns comes from matching clips to the
    frames of the same moment, not from a teacher's knowledge."""
    student = _student_path(out, seed)
    if not student.exists():  # named after its settings, so a finished one is reused, never a stale one
        budget = ["--epochs", str(T3D_TRANSFER_EPOCHS), "--lr", "0.03", "--seed", str(seed)]
        run_cli(["-q", "transfer", "--profile", "cpu", "--root", str(data.motion), *budget, "-o", str(student)])
    return student


def _student_path(out: Path, seed: int) -> Path:
    return out / f"t3d_student_seed{seed}_{T3D_TRANSFER_EPOCHS}ep.pt"


def train_all(runs: dict, workers: int = 2) -> dict:
    """``{key: Run}`` → ``{key: test metrics}``, ``workers`` runs at a time, one thread each: these
    small nets gain little from a second thread, so on a 2-core machine two single-thread runs side
    by side finish in about 0.55× the time of two 2-thread runs one after the other (res3d's
    profile: 18 s for both against 16 s each, 2-vCPU Intel Xeon with AMX)."""
    with ThreadPoolExecutor(max(1, min(workers, len(runs)))) as pool:
        futures = {key: pool.submit(train_profile, run) for key, run in runs.items()}
        return {key: future.result() for key, future in futures.items()}


def fuse_two_streams(spatial: Run, temporal: Run, out: Path) -> dict:
    """``vidnets fuse --preset two-stream`` of the two streams' test scores; its metrics."""
    from vidnets.cli import main

    scores = [str(r.out / "test_scores.npz") for r in (spatial, temporal)]
    if main(["-q", "fuse", *scores, "--preset", "two-stream", "--json", str(out)]) != 0:
        raise RuntimeError(f"fusing {scores} failed")
    return json.loads(out.read_text())


def fc6_svm(run: Run, data_root: Path) -> dict:
    """C3D's protocol on a trained run: fc6 of every video (``vidnets features --checkpoint``),
    a linear SVM fitted on the training split and scored on the test split (``vidnets svm``)."""
    from vidnets.cli import main

    features, report = run.out / "fc6", run.out / "svm.json"
    common = ["--layout", "ucf101", "--root", str(data_root), "--annotations", str(data_root)]
    if main(
        ["-q", "features", "--checkpoint", str(run.out / "last.pt"), *common, "--out", str(features), "--no-progress"]
    ):
        raise RuntimeError(f"fc6 features of {run.out} failed")
    lists = ["--train", str(data_root / "trainlist01.txt"), "--test", str(data_root / "testlist01.txt")]
    if main(["-q", "svm", "--features", str(features), *lists, "--json", str(report)]) != 0:
        raise RuntimeError(f"the SVM on {features} failed")
    return json.loads(report.read_text())


# -- measuring every claim ----------------------------------------------------------------------------


@dataclass
class Row:
    claim: str
    model: str
    seed: int
    top1: float
    videos: int
    seconds: float = 0.0  # training and testing


def measure(
    claims: tuple[str, ...], data: ClaimData, work: Path, seeds: tuple[int, ...], workers: int
) -> tuple[list[Row], int]:
    """Every run of ``claims`` at ``seeds`` (finished ones in ``work`` reused); the rows of the
    report and how many runs were reused."""
    runs = {
        (claim, name, seed): run
        for claim in claims
        for seed in seeds
        for name, run in runs_for(claim, data, work, seed).items()
    }
    reused = sum(finished(run) for run in runs.values())
    if "t3d" in claims:  # the transferred students first, two at a time
        with ThreadPoolExecutor(max(1, min(workers, len(seeds)))) as pool:
            list(pool.map(lambda seed: transfer_student(data, work, seed), seeds))
    metrics = train_all(runs, workers)
    rows = [
        Row(claim, name, seed, m["video_top1"], m["videos"], run_seconds(runs[claim, name, seed]))
        for (claim, name, seed), m in metrics.items()
    ]
    for seed in seeds:
        if "two_stream" in claims:
            streams = runs_for("two_stream", data, work, seed)
            fused = fuse_two_streams(*streams.values(), work / f"two_stream_fused_{seed}.json")
            rows.append(Row("two_stream", FUSION, seed, fused["accuracy"], fused["videos"]))
        if "c3d" in claims:
            svm = fc6_svm(runs_for("c3d", data, work, seed)["C3D 3×3×3 (3D)"], data.motion)
            rows.append(Row("c3d", SVM, seed, svm["accuracy"], svm["test_videos"]))
        if "t3d" in claims:
            rows.append(Row("t3d", MATCH, seed, transfer_match_accuracy(_student_path(work, seed)), 0))
    return rows, reused


def transfer_match_accuracy(student: Path) -> float:
    """The transfer stage's last-epoch accuracy on its match task (chance 50 %), from its ``epochs.csv``."""
    import csv

    with open(f"{student}.transfer/epochs.csv", newline="") as f:
        return float(list(csv.DictReader(f))[-1]["train_acc"])


# -- report -------------------------------------------------------------------------------------------

FUSION, SVM = "average fusion (1 : 1)", "C3D 3D, fc6 + linear SVM"
MATCH = "transfer stage: match-task train accuracy (chance 50 %)"
#: (claim, what is compared, first model, second model or None = the better of the claim's other rows)
VERDICTS = (
    (
        "two_stream",
        "temporal stream beats spatial stream",
        "temporal stream (flow stack)",
        "spatial stream (RGB frame)",
    ),
    ("two_stream", "average fusion at least as good as the better stream", FUSION, None),
    ("res3d", "3D beats its 2D twin", "res3d10 3D, 8-frame clips", "res3d10 2D twin, single frames"),
    ("c3d", "3D beats its 2D twin", "C3D 3×3×3 (3D)", "C3D 1×3×3 (2D twin)"),
    ("c3d", "fc6 + linear SVM against the net's own softmax (reported)", SVM, "C3D 3×3×3 (3D)"),
    ("tsn", "K=3 segments beat a single snippet", "TSN K=3, weighted consensus", "TSN K=1 (single snippet)"),
    ("p3d", "mixed A→B→C against the best single type (reported)", "P3D A→B→C (mixed)", None),
    ("t3d", "supervision transfer against scratch (reported)", "T3D after supervision transfer", "T3D from scratch"),
)


def noise(a: float, b: float, videos: int) -> float:
    """Two standard errors of the difference of two accuracies on ``videos`` test videos (binomial,
    normal approximation): gaps smaller than this are what a different test draw could give."""
    return 2 * ((a * (1 - a) + b * (1 - b)) / max(videos, 1)) ** 0.5


def verdict(a: float, b: float, videos: int, at_least: bool) -> str:
    gap, margin = a - b, noise(a, b, videos)
    if gap >= 0 if at_least else gap > margin:
        return "shown"
    return "within noise" if abs(gap) <= margin else "reversed"


def verdicts(rows: list[Row]) -> list[str]:
    """One line per comparison: each seed shown, within noise, or reversed (computed, not asserted)."""
    lines = []
    for claim, what, first, second in VERDICTS:
        cells = []
        for r in [r for r in rows if r.claim == claim and r.model == first]:
            others = [o for o in rows if o.claim == claim and o.seed == r.seed and o.model not in (first, SVM, MATCH)]
            if second is not None:
                others = [o for o in rows if o.claim == claim and o.seed == r.seed and o.model == second]
            if not others:
                continue
            b = max(o.top1 for o in others)
            at_least = claim == "two_stream" and second is None
            cells.append(f"seed {r.seed}: {r.top1:.1%} vs {b:.1%}, {verdict(r.top1, b, r.videos, at_least)}")
        if cells:
            lines.append(f"- **{claim}**, {what}: " + "; ".join(cells) + ".")
    return lines


def transfer_note(rows: list[Row]) -> list[str]:
    """A warning line when the transfer stage did not learn its match task (the T3D rows then
    compare two students that differ only in a near-random start)."""
    match = [r.top1 for r in rows if r.model == MATCH]
    if not match or max(match) >= 0.6:
        return []
    return [
        f"- **t3d**: the transfer stage stayed near chance on its match task ({', '.join(f'{a:.0%}' for a in match)}; "
        "chance 50 %): a teacher without ImageNet weights gives the student nothing to match, so whatever "
        "separates the two T3D rows is not the teacher's knowledge (the transferred student has also had the "
        "transfer stage's SGD steps on the training videos), and they do not test T3D's claim. With a local "
        "torchvision DenseNet-121 ImageNet state dict, `vidnets transfer --teacher-weights` gives the paper's teacher."
    ]


def _spread(values: list[float]) -> str:
    cells = " / ".join(f"{v:.1%}" for v in values)
    return cells + (f" (mean {statistics.mean(values):.1%})" if len(values) > 1 else "")


def _auto_precision() -> str:
    import torch

    from vidnets.utils.device import autocast_dtype

    return "bf16" if autocast_dtype(torch.device("cpu"), "auto") == torch.bfloat16 else "fp32"


def markdown(
    rows: list[Row], seeds: tuple[int, ...], command: str, seconds: float, workers: int, reused: int = 0
) -> str:
    from benchmarks.common import markdown_table

    models: dict[tuple[str, str], list[Row]] = {}
    for r in sorted(rows, key=lambda r: r.seed):
        models.setdefault((r.claim, r.model), []).append(r)
    table = markdown_table(
        ["claim", "model", f"video top-1, seeds {', '.join(map(str, seeds))}", "test videos", "train+test s"],
        [
            (
                c,
                m,
                _spread([r.top1 for r in rs]),
                rs[0].videos or "–",
                f"{sum(r.seconds for r in rs):.0f}" if rs[0].seconds else "–",
            )
            for (c, m), rs in models.items()
        ],
        align="lllrr",
    )
    return "\n".join(
        [
            "# The papers' claims in miniature",
            "",
            f"Measured by `{command}` on a {CPU_NAME}, {workers} runs at a time on one thread each, in "
            f"{seconds / 60:.1f} min{f' of wall time ({reused} runs were found finished in the work folder and reused)' if reused else ''}; "
            f"the runs' training and testing took {sum(r.seconds for r in rows) / 60:.1f} min in all "
            "(the table's last column, summed over the seeds). Every run is a recipe's CPU profile (`vidnets train RECIPE --profile cpu`, "
            f"precision `auto`, here {_auto_precision()}) with `train.seed` = the seed; the data are the same for every seed. Video "
            "top-1 on the test split. Chance: 25 % on the 4 motion classes (32 test videos), 50 % on the 2 "
            "order classes (16 test videos).",
            "",
            "Data: motion family, 4 classes × 32 videos of 16 frames at 32², and its DIS flow; order family, "
            "2 classes × 32 videos of 24 frames at 32² (`vidnets synth`). `tests/bench/test_claims.py` asserts "
            "the Two-Stream, Res3D, C3D and TSN comparisons with these same runs.",
            "",
            table,
            "",
            "A comparison is *shown* on a seed when the first model beats the second by more than two "
            "standard errors of the difference on that many test videos (for fusion: is at least as high), "
            "*within noise* when the gap is smaller than that either way, *reversed* otherwise:",
            "",
            *verdicts(rows),
            *transfer_note(rows),
            "",
            *(
                ["Not run:", "", *[f"- **{name}**: {reason}." for name, reason in NOT_RUN.items()], ""]
                if NOT_RUN
                else []
            ),
            "How each comparison is built: the docstring of `benchmarks/claims.py`; the class families: "
            "`vidnets/data/synthetic.py`.",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    from vidnets.utils.io import atomic_write_text

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default=",".join(CLAIMS), help=f"comma-separated claims ({', '.join(CLAIMS)})")
    p.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="comma-separated seeds (train.seed)")
    p.add_argument("--workers", type=int, default=2, help="runs at a time, one thread each (default 2)")
    p.add_argument("--work", default="", help="folder for data and runs (default: a temporary folder)")
    p.add_argument("--out", default="CLAIMS.md", help="the report to write")
    args = p.parse_args(argv)
    only = tuple(x.strip() for x in args.only.split(",") if x.strip())
    unknown = [x for x in only if x not in CLAIMS]
    if unknown:
        print(f"--only: unknown claim(s) {', '.join(unknown)}; expected some of {', '.join(CLAIMS)}", file=sys.stderr)
        return 2
    try:
        seeds = tuple(int(x) for x in args.seeds.split(",") if x.strip())
    except ValueError:
        print(f"--seeds: expected comma-separated integers, found {args.seeds!r}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vidnets-claims-") as tmp:
        work = Path(args.work or tmp)
        rows, reused = measure(only, make_data(work / "data"), work, seeds, args.workers)
    command = " ".join(["python -m benchmarks.claims", *(sys.argv[1:] if argv is None else argv)]).strip()
    text = markdown(rows, seeds, command, time.perf_counter() - start, args.workers, reused)
    atomic_write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
