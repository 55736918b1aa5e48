"""The HTTP API through FastAPI's test client: good clips, every file of a corrupt set, oversize and
undeclared uploads, a full queue; after each request the upload folder is empty again."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from vidnets.deploy.serve import create_app  # noqa: E402

LIMIT = 400_000  # bytes: well above the synthetic test clips


@pytest.fixture(scope="module")
def uploads(tmp_path_factory):
    return tmp_path_factory.mktemp("uploads")


@pytest.fixture(scope="module")
def client(tiny_checkpoint, uploads):
    app = create_app(tiny_checkpoint, upload_dir=uploads, max_upload_bytes=LIMIT, queue_size=4)
    with TestClient(app) as test_client:
        yield test_client
    assert not os.listdir(uploads)


def post(client, name: str, data: bytes, **form):
    return client.post(
        "/v1/predict",
        files={"file": (name, data, "application/octet-stream")},
        data={k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in form.items()},
    )


def _write_video(path, frames: int) -> bytes:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for k in range(frames):
            image = np.full((32, 32, 3), 40 * k % 255, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path.read_bytes()


@pytest.fixture(scope="module")
def corrupt_set(sample_video, tmp_path_factory) -> dict[str, tuple[bytes, int, str]]:
    """name → (bytes, expected status, a phrase the message must hold)."""
    good = sample_video.read_bytes()
    folder = tmp_path_factory.mktemp("corrupt")
    rng = np.random.default_rng(0)
    return {
        "zero-byte.avi": (b"", 422, "empty file"),
        "truncated.avi": (good[: len(good) // 2], 422, "truncated: its header declares 60 frames"),
        "header-only.avi": (good[: good.find(b"movi") + 4], 422, "no frames"),
        "random.mp4": (rng.integers(0, 256, 20_000, dtype=np.uint8).tobytes(), 415, "not a readable video"),
        "notes.avi": (b"these are my notes, not a video\n" * 50, 415, "not a readable video"),
        "one-frame.avi": (_write_video(folder / "one.avi", 1), 422, "1 frame(s); at least 2"),
        # the FourCC of an unknown codec: the container opens, nothing decodes it
        "codec.avi": (good.replace(b"FMP4", b"QQQQ"), 415, "video codec cannot be decoded"),
    }


def test_health_model_and_docs(client, tiny_checkpoint):
    assert client.get("/healthz").json()["status"] == "ok"
    contract = client.get("/v1/model").json()
    assert contract["model"]["name"] == "res3d10" and contract["class_names"] == ["MoveUp", "MoveDown", "MoveSideways"]
    assert contract["input"]["shape"] == [None, 3, 4, 16, 16] and contract["test_protocol"]["views"] == 3
    assert "/v1/predict" in client.get("/openapi.json").json()["paths"]
    page = client.get("/")
    assert page.status_code == 200 and "Drop a video" in page.text
    assert client.get("/static/app.js").status_code == 200


def test_predict_matches_vidnets_predict(client, tiny_checkpoint, sample_video, uploads):
    from vidnets.engine.predict import Predictor

    response = post(client, "clip.avi", sample_video.read_bytes(), topk=3)
    assert response.status_code == 200, response.text
    body = response.json()
    expected = Predictor(tiny_checkpoint, device="cpu").video(sample_video).topk(3)
    assert [t["class"] for t in body["topk"]] == [name for name, _ in expected]
    assert np.allclose([t["probability"] for t in body["topk"]], [p for _, p in expected], atol=1e-4)
    assert body["model"]["name"] == "res3d10" and body["model"]["recorded_metrics"]["videos"] == 3
    assert body["model"]["recorded_accuracy"].startswith("checkpoint: test video top-1")
    assert body["video"] == {"name": "clip.avi", "frames": 60, "fps": 25.0, "duration": 2.4}
    assert "timeline" not in body and "frames" not in body
    assert not os.listdir(uploads)


def test_timeline_and_frames(client, sample_video):
    body = post(client, "clip.avi", sample_video.read_bytes(), timeline=True, window=0.8, hop=0.4, frames=4).json()
    windows = body["timeline"]["windows"]
    assert [(w["start"], w["end"]) for w in windows] == [(0.0, 0.8), (0.4, 1.2), (0.8, 1.6), (1.2, 2.0), (1.6, 2.4)]
    series = body["timeline"]["series"]
    assert [s["class"] for s in series] == [t["class"] for t in body["topk"]][:3]
    assert all(len(s["probabilities"]) == 5 for s in series)
    assert len(body["frames"]) == 4 and body["frames"][0]["jpeg"].startswith("data:image/jpeg;base64,")


def test_windows_are_scored_like_the_predict_timeline(client, tiny_checkpoint, sample_video):
    from vidnets.engine.predict import Predictor

    body = post(client, "clip.avi", sample_video.read_bytes(), timeline=True, window=0.8, hop=0.4, topk=3).json()
    expected = Predictor(tiny_checkpoint, device="cpu").timeline(sample_video, window=0.8, hop=0.4)
    names = expected.class_names
    for served, row in zip(body["timeline"]["windows"], expected.probs):
        assert np.allclose(
            [t["probability"] for t in served["topk"]],
            [row[names.index(t["class"])] for t in served["topk"]],
            atol=1e-4,
        )


@pytest.mark.parametrize(
    "name",
    ["zero-byte.avi", "truncated.avi", "header-only.avi", "random.mp4", "notes.avi", "one-frame.avi", "codec.avi"],
)
def test_corrupt_files_get_a_clear_4xx(client, corrupt_set, uploads, name):
    data, status, phrase = corrupt_set[name]
    response = post(client, name, data)
    assert response.status_code == status, response.text
    body = response.json()
    assert phrase in body["detail"] and body["detail"].startswith(name)
    assert str(uploads) not in response.text  # the server's own paths stay private
    assert not os.listdir(uploads)


def test_oversize_and_undeclared_uploads_are_refused(client, uploads):
    response = post(client, "big.avi", b"\0" * (LIMIT + 1))
    assert response.status_code == 413 and "over the limit" in response.json()["detail"]
    chunked = client.post(
        "/v1/predict", content=iter([b"--x\r\n", b"data"]), headers={"Content-Type": "multipart/form-data; boundary=x"}
    )
    assert chunked.status_code == 411 and "Content-Length" in chunked.json()["detail"]
    assert not os.listdir(uploads)


def test_client_paths_are_never_opened(client, sample_video, uploads):
    """The file name is echoed, never used: a name that is a real path does not change what is read."""
    response = post(client, str(sample_video), b"not a video at all" * 10)
    assert response.status_code == 415 and response.json()["detail"].startswith(sample_video.name)
    response = post(client, "../../etc/passwd", sample_video.read_bytes())
    assert response.status_code == 200 and response.json()["video"]["name"] == "passwd"
    assert not os.listdir(uploads)


def test_bad_form_values_are_400s(client, sample_video):
    assert post(client, "clip.avi", sample_video.read_bytes(), topk=0).status_code == 422
    assert client.post("/v1/predict", data={"topk": "3"}).status_code == 422  # no file


def test_full_queue_answers_503_with_retry_after(tiny_checkpoint, sample_video, tmp_path):
    app = create_app(tiny_checkpoint, upload_dir=tmp_path, queue_size=1)
    release, entered = threading.Event(), threading.Event()
    score = app.state.scorer.score

    def slow_score(*args, **kwargs):
        entered.set()
        release.wait(30)
        return score(*args, **kwargs)

    app.state.scorer.score = slow_score
    with TestClient(app) as test_client:
        first: dict = {}
        worker = threading.Thread(target=lambda: first.update(r=post(test_client, "a.avi", sample_video.read_bytes())))
        worker.start()
        assert entered.wait(30)
        busy = post(test_client, "b.avi", sample_video.read_bytes())
        assert busy.status_code == 503 and int(busy.headers["Retry-After"]) >= 1
        assert test_client.get("/healthz").json()["queue"] == {"admitted": 1, "limit": 1}
        release.set()
        worker.join(30)
        assert first["r"].status_code == 200
        assert post(test_client, "c.avi", sample_video.read_bytes()).status_code == 200
    assert not os.listdir(tmp_path)


def test_export_folder_serves_the_same_answer(client, tiny_checkpoint, sample_video, tmp_path):
    from vidnets.cli import main

    assert main(["export", str(tiny_checkpoint), "--format", "onnx", "--out", str(tmp_path / "onnx")]) == 0
    contract = json.loads((tmp_path / "onnx" / "model.json").read_text())
    assert contract["export"]["format"] == "onnx" and contract["preprocessing"]["mean"] == [128.0] * 3
    assert contract["preprocessing"]["frames"] == 4 and contract["preprocessing"]["crop"] == 16
    with TestClient(create_app(tmp_path / "onnx", upload_dir=tmp_path / "up")) as onnx_client:
        served = post(onnx_client, "clip.avi", sample_video.read_bytes(), topk=3).json()
        assert onnx_client.get("/v1/model").json() == contract
    eager = post(client, "clip.avi", sample_video.read_bytes(), topk=3).json()
    assert served["model"]["source"] == "onnx"
    assert [t["class"] for t in served["topk"]] == [t["class"] for t in eager["topk"]]
    assert np.allclose([t["probability"] for t in served["topk"]], [t["probability"] for t in eager["topk"]], atol=1e-5)


def test_export_refuses_to_overwrite(tiny_checkpoint, tmp_path, capsys):
    from vidnets.cli import main

    (tmp_path / "out").mkdir()
    assert main(["export", str(tiny_checkpoint), "--format", "pt2", "--out", str(tmp_path / "out")]) == 2
    assert "already exists" in capsys.readouterr().err
