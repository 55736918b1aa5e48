"""``vidnets serve``: a FastAPI application scoring uploaded videos, with a web page at ``/``.

API (OpenAPI docs at ``/docs``)::

    POST /v1/predict   multipart: file (the video), topk=5, timeline=false, window=2, hop=1, frames=0
                       → top-k with probabilities, the model and its recorded test accuracy,
                         per-window scores with timeline=true, `frames` sampled thumbnails
    GET  /v1/model     the contract (model.json)
    GET  /healthz      liveness and queue occupancy

Errors are JSON ``{"error": code, "detail": one line}``: 400 bad form values, 411 no Content-Length,
413 upload over ``max_upload_bytes`` (refused from the header, before the body is read), 415 not a
video or a codec that does not decode, 422 an empty, truncated, zero- or one-frame video, 503 with
``Retry-After`` when ``queue_size`` requests are already admitted.

Uploads are copied into a private temporary folder under a generated name (the client's file name
is only echoed, never used as a path) and removed when the request ends, whatever happens.
Decoding and inference run on a pool of ``workers`` threads, off the event loop; the views of one
request (whole video and every timeline window) go through the network in batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, File, Form, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from vidnets.deploy.runtime import BadVideo, Scores, VideoScorer, load_deployment
from vidnets.engine.predict import recorded_accuracy_line

__all__ = ["create_app"]

log = logging.getLogger(__name__)
STATIC_DIR = Path(str(resources.files("vidnets.deploy") / "static"))


def _error(status: int, code: str, detail: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


class _Admission:
    """At most ``limit`` requests admitted (running or waiting for a worker); the rest are refused."""

    def __init__(self, limit: int, workers: int):
        self.limit, self.workers, self.active = limit, workers, 0
        self.lock = threading.Lock()
        self.mean_seconds = 1.0  # running mean of a request's scoring time, for Retry-After

    def enter(self) -> bool:
        with self.lock:
            if self.active >= self.limit:
                return False
            self.active += 1
            return True

    def leave(self, seconds: float | None) -> None:
        with self.lock:
            self.active -= 1
            if seconds is not None:
                self.mean_seconds = 0.8 * self.mean_seconds + 0.2 * seconds

    def retry_after(self) -> int:
        """Seconds until the admitted requests are likely done."""
        return max(1, math.ceil(self.mean_seconds * self.active / self.workers))


class _UploadLimit:
    """ASGI middleware: a POST must declare its size, and one over ``limit`` bytes is refused with 413
    before any of its body is read."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST":
            headers = dict(scope["headers"])
            length = headers.get(b"content-length")
            response = None
            if length is None:
                response = _error(411, "length_required", "the upload must declare its size (Content-Length)")
            elif not length.isdigit() or int(length) > self.limit:
                response = _error(
                    413,
                    "too_large",
                    f"upload of {length.decode(errors='replace')} bytes is over "
                    f"the limit of {self.limit} bytes ({self.limit / 2**20:.0f} MB)",
                )
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _display_name(filename: str | None) -> str:
    """The client's file name for messages only: its last part, printable, at most 100 characters."""
    name = os.path.basename((filename or "").replace("\\", "/"))
    name = "".join(c for c in name if c.isprintable())[:100]
    return name or "upload"


def _topk(probs, class_names: list[str], k: int) -> list[dict]:
    order = probs.argsort()[::-1][:k]
    return [{"class": class_names[i], "probability": round(float(probs[i]), 6)} for i in order]


def _timeline_json(scores: Scores, k: int, series_classes: list[int], window: float, hop: float) -> dict:
    line = scores.timeline
    names = line.class_names
    return {
        "window": window,
        "hop": hop,
        "windows": [
            {"start": round(a, 3), "end": round(b, 3), "topk": _topk(row, names, k)}
            for (a, b), row in zip(line.spans, line.probs)
        ],
        "series": [
            {"class": names[c], "probabilities": [round(float(p), 5) for p in line.probs[:, c]]} for c in series_classes
        ],
    }


def create_app(
    source: str | os.PathLike,
    *,
    max_upload_bytes: int = 200 * 2**20,
    queue_size: int = 8,
    workers: int = 1,
    batch_size: int = 16,
    upload_dir: str | os.PathLike | None = None,
    min_frames: int = 2,
    max_windows: int = 120,
) -> FastAPI:
    """The application serving ``source`` (a checkpoint or an export folder); see the module docstring.

    ``upload_dir``: where uploads are written while they are scored (default: a new private folder in
    the system's temporary directory, removed at shutdown).
    """
    deployment = load_deployment(source)
    scorer = VideoScorer(deployment, batch_size=batch_size, min_frames=min_frames, max_windows=max_windows)
    own_dir = upload_dir is None
    uploads = Path(tempfile.mkdtemp(prefix="vidnets-serve-") if own_dir else upload_dir)
    uploads.mkdir(parents=True, exist_ok=True)
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vidnets-score")
    gate = _Admission(queue_size, workers)
    contract = deployment.contract

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        executor.shutdown(wait=True)
        if own_dir:
            shutil.rmtree(uploads, ignore_errors=True)

    app = FastAPI(
        title="vidnets",
        lifespan=lifespan,
        description=f"Video action recognition with {contract['model']['name']} "
        f"({len(contract['class_names'])} classes).",
    )
    app.state.deployment, app.state.scorer, app.state.upload_dir = deployment, scorer, uploads
    app.add_middleware(_UploadLimit, limit=max_upload_bytes)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _add_info_routes(app, contract, gate)
    _add_predict_route(app, gate, executor, uploads)
    return app


def _add_info_routes(app: FastAPI, contract: dict, gate: _Admission) -> None:
    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/healthz")
    async def healthz() -> dict:
        return {
            "status": "ok",
            "model": contract["model"]["name"],
            "queue": {"admitted": gate.active, "limit": gate.limit},
        }

    @app.get("/v1/model")
    async def model() -> dict:
        return contract


def _add_predict_route(app: FastAPI, gate: _Admission, executor: ThreadPoolExecutor, uploads: Path) -> None:
    @app.post(
        "/v1/predict",
        responses={
            413: {"description": "upload over the size limit"},
            415: {"description": "not a video, or a codec that does not decode"},
            422: {"description": "empty, truncated or too short video"},
            503: {"description": "queue full; retry after Retry-After seconds"},
        },
    )
    async def predict(
        file: UploadFile = File(..., description="the video file"),
        topk: int = Form(5, ge=1, description="classes to return"),
        timeline: bool = Form(False, description="also score windows of the video"),
        window: float = Form(2.0, gt=0, le=600, description="timeline window, seconds"),
        hop: float = Form(1.0, gt=0, le=600, description="timeline hop, seconds"),
        frames: int = Form(0, ge=0, le=32, description="sampled thumbnails to return"),
    ):
        if not gate.enter():
            return _error(
                503,
                "busy",
                f"{gate.limit} requests are already queued; retry later",
                headers={"Retry-After": str(gate.retry_after())},
            )
        started, seconds = time.perf_counter(), None
        name = _display_name(file.filename)
        try:
            job = functools.partial(
                _score_upload,
                app.state.scorer,
                file.file,
                name,
                uploads,
                topk=topk,
                timeline=timeline,
                window=window,
                hop=hop,
                frames=frames,
            )
            body = await asyncio.get_running_loop().run_in_executor(executor, job)
            seconds = time.perf_counter() - started
            body["seconds"] = round(seconds, 3)
            return body
        except BadVideo as e:
            return _error(415 if e.kind == "unsupported" else 422, f"{e.kind}_video", str(e))
        except ValueError as e:
            return _error(422, "unusable_video", f"{name}: {e}")
        except Exception:  # noqa: BLE001 - a bug: logged with its traceback, reported without internals
            log.exception("scoring %s failed", name)
            return _error(500, "internal", f"{name}: scoring failed on the server; see its log")
        finally:
            gate.leave(seconds)


def _score_upload(
    scorer: VideoScorer,
    upload,
    name: str,
    folder: Path,
    *,
    topk: int,
    timeline: bool,
    window: float,
    hop: float,
    frames: int,
) -> dict:
    """Copy the upload to a private temporary file, score it and remove the file (worker thread)."""
    fd, path = tempfile.mkstemp(prefix="upload-", suffix=".video", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            upload.seek(0)
            shutil.copyfileobj(upload, out, 1 << 20)
        scores = scorer.score(path, name=name, timeline=timeline, window=window, hop=hop)
        contract = scorer.contract
        names = scorer.class_names
        k = min(topk, len(names))
        body = {
            "model": {
                "name": contract["model"]["name"],
                "source": scorer.deployment.source,
                "classes": len(names),
                "recorded_metrics": contract.get("metrics") or {},
                "recorded_accuracy": recorded_accuracy_line(contract.get("metrics") or {}),
            },
            "video": {
                "name": name,
                "frames": scores.meta.num_frames,
                "fps": scores.meta.fps,
                "duration": scores.meta.duration,
            },
            "topk": _topk(scores.video.probs, names, k),
        }
        if scores.timeline is not None:
            series = list(scores.video.probs.argsort()[::-1][: min(5, len(names))])
            real_hop = (
                (scores.timeline.spans[1][0] - scores.timeline.spans[0][0]) if len(scores.timeline.spans) > 1 else hop
            )
            body["timeline"] = _timeline_json(scores, min(3, k), series, window, round(real_hop, 3))
        if frames:
            body["frames"] = scorer.frame_strip(path, scores.meta, count=frames)
        return body
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
