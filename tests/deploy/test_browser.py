"""The web page in a real browser: headless Chromium (Debian's ``chromium``, driven by Playwright)
opens ``/``, a video is dropped on the page, and the top-k bars and the timeline appear.

Skipped, with the reason in the test summary, when Playwright or Chromium is missing (``.ci/run``
installs both). ``VIDNETS_SCREENSHOT=path`` also saves the screenshot there (the README's image).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import threading
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
playwright = pytest.importorskip("playwright.sync_api", reason="browser test skipped: Playwright is not installed")

from vidnets.deploy.serve import create_app  # noqa: E402

CHROMIUM = next(
    (p for p in (os.environ.get("VIDNETS_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser")) if p),
    None,
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="browser test skipped: no Chromium found (apt-get install chromium, or set VIDNETS_CHROMIUM)",
)


@pytest.fixture(scope="module")
def long_video(tmp_path_factory) -> Path:
    """An 8-second clip, long enough for a timeline of several 2-second windows."""
    from vidnets.data.synthetic import generate_dataset

    root = generate_dataset(
        tmp_path_factory.mktemp("long"), num_classes=3, videos_per_class=2, frames=200, size=64, seed=1
    )
    return sorted(root.glob("MoveSideways/*.avi"))[0]


@pytest.fixture(scope="module")
def server(tiny_checkpoint, tmp_path_factory):
    """The app on a free loopback port, run by uvicorn in a thread."""
    import uvicorn

    uploads = tmp_path_factory.mktemp("browser-uploads")
    app = create_app(tiny_checkpoint, upload_dir=uploads)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        threading.Event().wait(0.05)
    yield f"http://127.0.0.1:{port}", uploads
    server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture(scope="module")
def page():
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 960, "height": 1000})
        yield page
        browser.close()


def _drop(page, path: Path) -> None:
    """Drop ``path`` on the drop zone, as a user dragging it from a file manager does."""
    data = base64.b64encode(path.read_bytes()).decode()
    transfer = page.evaluate_handle(
        """([name, data]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: "video/x-msvideo" }));
            return transfer;
        }""",
        [path.name, data],
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})


def test_drop_a_video_and_see_topk_and_timeline(server, page, long_video, tiny_checkpoint, tmp_path):
    url, uploads = server
    recorded = json.loads((tiny_checkpoint.parent / "test_metrics.json").read_text())["video_top1"]
    gate = threading.Event()

    def hold(route):  # keep the request in flight until the progress indicator has been seen
        gate.wait(10)
        route.continue_()

    page.route("**/v1/predict", hold)
    page.goto(url)
    page.wait_for_function("document.getElementById('model').textContent.includes('res3d10')")
    assert "3 classes" in page.inner_text("#model")
    assert f"recorded test top-1 {100 * recorded:.1f}% on 3 videos" in page.inner_text("#model")

    _drop(page, long_video)
    page.wait_for_selector("#busy:not([hidden])")
    assert long_video.name in page.inner_text("#status")
    gate.set()
    page.wait_for_selector("#topk li", timeout=60_000)
    page.wait_for_selector("#timeline svg polyline")
    page.unroute("**/v1/predict")

    rows = [row.split("\n") for row in page.locator("#topk li").all_inner_texts()]
    names = [r[0] for r in rows]
    assert sorted(names) == ["MoveDown", "MoveSideways", "MoveUp"]
    percents = [float(r[-1].rstrip("%")) for r in rows]
    assert percents == sorted(percents, reverse=True) and abs(sum(percents) - 100) < 0.5
    widths = page.eval_on_selector_all("#topk .bar", "bars => bars.map(b => parseFloat(b.style.width))")
    assert [round(w, 1) for w in widths] == pytest.approx(percents, abs=0.06)

    lines = page.eval_on_selector_all("#timeline polyline", "ls => ls.map(l => l.dataset.class)")
    assert lines == names  # one line per class, in top-k order
    points = page.get_attribute("#timeline polyline", "points").split()
    assert len(points) == 7  # 8 s in 2-s windows every second
    assert page.inner_text("#timeline .legend").split("\n") == names
    assert page.locator("#frames img").count() == 8
    assert page.is_hidden("#busy") and page.is_hidden("#error")

    shot = tmp_path / "serve.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("VIDNETS_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["VIDNETS_SCREENSHOT"])
    assert not os.listdir(uploads)


def test_a_bad_file_shows_the_servers_message(server, page, tmp_path):
    url, uploads = server
    notes = tmp_path / "notes.avi"
    notes.write_text("not a video\n" * 20)
    page.goto(url)
    page.set_input_files("#file", str(notes))
    page.wait_for_selector("#error:not([hidden])", timeout=30_000)
    text = page.inner_text("#error")
    assert text.startswith("Error 415: notes.avi: not a readable video")
    assert page.is_hidden("#result")
    assert not os.listdir(uploads)
