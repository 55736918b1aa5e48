"""Run a deployed model on a video file: a checkpoint or an export folder behind one interface.

``load_deployment(path)`` accepts a vidnets checkpoint (run eagerly through the inference fast path
of :func:`vidnets.engine.fastpath.prepare_for_inference`) or a folder written by ``vidnets export``
(run through onnxruntime, ``torch.export.load`` or ``torch.jit.load``). Either way the video goes
through the checkpoint's own test pipeline, rebuilt from the recorded config by the engine
(:func:`vidnets.engine.build.build_test_dataset`), so a served prediction equals ``vidnets predict``.

:class:`VideoScorer` scores the whole video and, optionally, a timeline of windows
(:func:`vidnets.engine.predict.timeline_windows`); the views of the video and of every window are
streamed through the network in batches of ``batch_size`` views, so memory stays bounded by one
batch and one window's views however long the video is.

Note: ``model.pt2`` and ``model.ts`` files hold programs; load only exports you trust.
``model.onnx`` holds a graph and weights only.
"""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from vidnets.data.video import FRAME_COUNT_TOLERANCE, VideoError, VideoMeta
from vidnets.deploy.contract import build_contract, contract_config, read_contract
from vidnets.engine.predict import Prediction, WindowSampler, timeline_windows

__all__ = [
    "Runner",
    "load_runner",
    "load_checkpoint_model",
    "Deployment",
    "load_deployment",
    "BadVideo",
    "VideoScorer",
    "Scores",
]

#: a network callable: float32 (N, …) views → float32 (N, classes) logits
Runner = Callable[[torch.Tensor], torch.Tensor]


class _OnnxRunner:
    def __init__(self, path: str | Path, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        array = x.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {self.input_name: array})[0])


class _ModuleRunner:
    """A loaded ``torch.export`` program or TorchScript module, run without autograd."""

    def __init__(self, module: Callable):
        self.module = module

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.module(x.to(torch.float32)).float()


def load_runner(fmt: str, path: str | Path) -> Runner:
    """The runner of an exported network file of format ``fmt`` (see ``vidnets.deploy.export.FORMATS``)."""
    path = str(path)
    if fmt == "onnx":
        return _OnnxRunner(path)
    if fmt == "pt2":
        return _ModuleRunner(torch.export.load(path).module())
    if fmt == "torchscript":
        return _ModuleRunner(torch.jit.load(path, map_location="cpu").eval())
    raise ValueError(f"export format {fmt!r}: expected onnx, pt2 or torchscript")


def load_checkpoint_model(checkpoint: str | Path) -> tuple[nn.Module, dict]:
    """(fp32 eval model on the CPU, contract) of a checkpoint (weights-only unpickling); a multi-task
    checkpoint gives the head of ``multitask.eval_task``, as ``vidnets test`` does."""
    from vidnets.engine.build import model_from_checkpoint, select_task
    from vidnets.engine.config import load_config

    model, state = model_from_checkpoint(checkpoint, "cpu")
    model, cfg, class_names = select_task(model, state, load_config(state["config"]))
    return model.eval(), build_contract(state, cfg, class_names, model)


@dataclass
class Deployment:
    """A model ready to score clips: its contract and the network callable."""

    contract: dict
    runner: Runner
    source: str  # "checkpoint", "onnx", "pt2" or "torchscript"
    path: str


def load_deployment(path: str | Path) -> Deployment:
    """A checkpoint file or an export folder as a :class:`Deployment`."""
    path = Path(path)
    if path.is_dir():
        contract = read_contract(path)
        fmt, name = contract["export"].get("format"), contract["export"].get("file", "")
        network = path / Path(name).name  # only a file inside the folder, whatever model.json says
        if not network.is_file():
            raise FileNotFoundError(f"{network}: no such file; the export folder {path} is incomplete")
        return Deployment(contract, load_runner(fmt, network), fmt, str(path))
    from vidnets.engine.fastpath import prepare_for_inference
    from vidnets.engine.train import uses_channels_last

    model, contract = load_checkpoint_model(path)
    train = contract_config(contract).train
    # as `vidnets predict` and `vidnets test` run it: the checkpoint's precision setting and layout
    fast = prepare_for_inference(
        model, precision=train.precision, copy=False, channels_last=train.channels_last and uses_channels_last(model)
    )
    return Deployment(contract, fast, "checkpoint", str(path))


def _declared_frames(path: str) -> int:
    """The frame count the container's header declares (0 when it declares none)."""
    import av

    with av.open(path, metadata_errors="ignore") as container:
        return int(container.streams.video[0].frames or 0)


class BadVideo(ValueError):
    """An upload that is not a video this model can score. ``kind``: ``"unsupported"`` (not a video,
    no video stream, a codec that does not decode) or ``"unusable"`` (empty, truncated, too short)."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind


@dataclass
class Scores:
    """The whole video's prediction, and its timeline when asked for."""

    video: Prediction
    timeline: Prediction | None
    meta: VideoMeta


class VideoScorer:
    """Scores video files with a deployment's test protocol (module docstring).

    ``min_frames``: shorter files are refused (a single frame is a still image, not a video).
    ``max_windows``: a timeline of a long video widens its hop so that it has at most this many windows.
    """

    def __init__(self, deployment: Deployment, *, batch_size: int = 16, min_frames: int = 2, max_windows: int = 120):
        self.deployment, self.contract = deployment, deployment.contract
        if self.contract.get("modality") == "flow":
            raise ValueError(
                f"{deployment.path}: a flow model reads optical flow computed beforehand "
                "(`vidnets flow extract`), not video files; serve its RGB stream instead"
            )
        cfg = contract_config(self.contract)
        # uploads are not part of any dataset: no metadata cache entries for them
        self.cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, metadata_cache=None))
        self.class_names = list(self.contract["class_names"])
        self.batch_size, self.min_frames, self.max_windows = batch_size, min_frames, max_windows

    def _dataset(self, path: str):
        from vidnets.data.datasets import VideoRecord
        from vidnets.engine.build import build_test_dataset

        return build_test_dataset(self.cfg, [VideoRecord(path, 0)])[0]

    def probe(self, path: str, name: str):
        """The video's metadata; :class:`BadVideo` (naming ``name``, never the server's path) when unusable."""
        from vidnets.data.video import probe

        try:
            meta = probe(path)
        except VideoError as e:
            text = str(e).replace(path, name)
            if "empty file" in text or "no frames" in text or "demux" in text:
                raise BadVideo(text, "unusable") from None
            raise BadVideo(
                f"{text}; not a video, a format or codec this server cannot decode, or truncated before its index",
                "unsupported",
            ) from None
        declared = _declared_frames(path)
        if declared - meta.num_frames > FRAME_COUNT_TOLERANCE:
            raise BadVideo(
                f"{name}: truncated: its header declares {declared} frames and only {meta.num_frames} are present",
                "unusable",
            )
        if meta.num_frames < self.min_frames:
            raise BadVideo(
                f"{name}: {meta.num_frames} frame(s); at least {self.min_frames} are needed "
                "(a single frame is a still image, not a video)",
                "unusable",
            )
        return meta

    def score(
        self, path: str, *, name: str = "video", timeline: bool = False, window: float = 2.0, hop: float = 1.0
    ) -> Scores:
        """Probe, decode and score ``path``; ``name`` is what messages call the file."""
        meta = self.probe(path, name)
        fps = meta.fps or 25.0
        dataset = self._dataset(path)
        windows: list[tuple[int, int]] = []
        if timeline:
            if not hasattr(dataset, "sampler"):
                raise ValueError(f"recipe {self.cfg.data.recipe} has no frame sampler to confine to windows")
            hop = max(hop, (meta.num_frames / fps - window) / max(self.max_windows - 1, 1))
            windows = timeline_windows(meta.num_frames, fps, window, hop)
        probs = self._probs(self._items(dataset, windows, path, name), 1 + len(windows))
        video = Prediction(probs[0], self.class_names)
        line = None
        if windows:
            spans = [(start / fps, (start + length) / fps) for start, length in windows]
            line = Prediction(probs[1:], self.class_names, times=np.array([(a + b) / 2 for a, b in spans]), spans=spans)
        return Scores(video, line, meta)

    def _items(self, dataset, windows: list[tuple[int, int]], path: str, name: str) -> Iterator[torch.Tensor]:
        """The views of the whole video, then of each window: (V, …) tensors, one at a time."""
        base = getattr(dataset, "sampler", None)
        for start, length in [(None, 0), *windows]:
            if start is not None:
                dataset.sampler = WindowSampler(base, start, length)
            item = dataset[0]  # test-mode datasets are deterministic
            if "error" in item:
                raise BadVideo(
                    f"{name}: cannot be decoded, truncated or damaged ({item['error'].replace(path, name)})", "unusable"
                )
            yield item["clip"]

    def _probs(self, items: Iterator[torch.Tensor], rows: int) -> np.ndarray:
        """(rows, classes) mean softmax over each row's views, the views run ``batch_size`` at a time."""
        sums = torch.zeros(rows, len(self.class_names), dtype=torch.float64)
        counts = torch.zeros(rows, dtype=torch.float64)
        pending: list[tuple[int, torch.Tensor]] = []  # (row, views)
        size = 0

        def flush() -> None:
            nonlocal size
            batch = torch.cat([views for _, views in pending])
            logits = self.deployment.runner(batch).float()
            owner = torch.cat([torch.full((len(views),), row) for row, views in pending])
            sums.index_add_(0, owner, logits.softmax(-1).double())
            counts.index_add_(0, owner, torch.ones(len(owner), dtype=torch.float64))
            pending.clear()
            size = 0

        for row, views in enumerate(items):
            for chunk in views.split(self.batch_size):
                pending.append((row, chunk))
                size += len(chunk)
                if size >= self.batch_size:
                    flush()
        if pending:
            flush()
        return (sums / counts[:, None]).float().numpy()

    @staticmethod
    def frame_strip(path: str, meta: VideoMeta, count: int = 8, height: int = 72) -> list[dict]:
        """``count`` evenly spaced frames as small JPEG data URLs with their times, for the web page."""
        import cv2

        from vidnets.data.video import read_frames

        fps = meta.fps or 25.0
        indices = np.unique(np.linspace(0, meta.num_frames - 1, min(count, meta.num_frames)).round().astype(int))
        frames = read_frames(path, indices, size=height)
        strip = []
        for index, frame in zip(indices, frames):
            ok, jpeg = cv2.imencode(".jpg", np.ascontiguousarray(frame[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 80])
            if ok:
                strip.append(
                    {
                        "time": round(float(index / fps), 3),
                        "jpeg": "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode(),
                    }
                )
        return strip
