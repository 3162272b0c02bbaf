"""The try-on page end to end in a real browser: Debian's headless Chromium, driven by Selenium
through Debian's chromedriver, its camera faked from a clip made of the bundled sample, talking
to a real `python -m tracker.web` server on loopback.

Set FACELITE_WEB_SCREENSHOT=path.png to keep the screenshot (the README's picture).
"""
import base64
import json
import os
import re
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("starlette", reason="the web extra is not installed (pip install -e '.[web]')")
pytest.importorskip("uvicorn", reason="the web extra is not installed (pip install -e '.[web]')")
selenium = pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[test]')")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
    pytest.skip("needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver; "
                ".ci/run installs them)", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from tests.web_helpers import corner_change, lip_change  # noqa: E402
from tools.web_server import ServerProcess, sample_frames  # noqa: E402

FPS_FLOOR = 3.0  # frames/s the page must show: about 30 on an idle 2-core machine, 6 with 5 busy jobs
CLIP_FRAMES = 60


def write_y4m(path: Path, frames) -> None:
    """Frames as a raw YUV4MPEG2 4:2:0 clip, the format Chromium's fake camera plays (looped)."""
    h, w = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F30:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())


@pytest.fixture(scope="module")
def server():
    with ServerProcess("--max-sessions", "2") as srv:
        yield srv


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    clip = folder / "camera.y4m"
    write_y4m(clip, sample_frames(CLIP_FRAMES))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--user-data-dir={tempfile.mkdtemp(dir=folder)}",
                "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-video-capture={clip}", "--window-size=1100,900"):
        options.add_argument(arg)
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager look for a browser online
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


def data_url_image(url: str) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)


def wait(driver, condition, timeout=30.0, what="condition"):
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: condition(d), message=what)


def shown_frame(driver, look):
    """(raw frame, frame on screen, header) of a frame rendered with `look` that has one face."""
    def ready(d):
        f = d.execute_script("return window.facelite.frames()")
        return f if f and f["header"]["look"] == look and len(f["header"]["faces"]) == 1 else None
    f = wait(driver, ready, what=f"a frame with one face rendered with look {look}")
    return data_url_image(f["raw"]), data_url_image(f["output"]), f["header"]


def test_live_page_makes_up_the_camera_and_switches_looks(server, browser, tmp_path):
    browser.get(server.url + "/")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".swatch[data-look=bold]"), what="look swatches")
    browser.find_element(By.ID, "start").click()
    wait(browser, lambda d: d.execute_script("return window.facelite.stats.frames") >= 20, timeout=40,
         what="20 frames back from the server")

    raw, out, header = shown_frame(browser, "natural")
    assert out.shape == raw.shape == (480, 640, 3)
    points = header["faces"][0]["landmarks"]
    natural = lip_change(raw, out, points)
    assert natural > 5, "the lips on screen are not made up"
    assert corner_change(raw, out) < 3, "the frame on screen is not the camera's frame"

    browser.find_element(By.CSS_SELECTOR, ".swatch[data-look=bold]").click()
    raw, out, header = shown_frame(browser, "bold")
    bold = lip_change(raw, out, header["faces"][0]["landmarks"])
    assert bold > natural + 5, f"switching to bold did not change the lips ({natural:.1f} -> {bold:.1f})"

    time.sleep(2.5)  # a full window of the page's frames/s and latency readout
    stats, shown, latency_text = browser.execute_script(  # in one go: a new frame updates all three
        "return [window.facelite.stats, document.getElementById('fps').textContent,"
        " document.getElementById('latency').textContent]")
    assert float(re.match(r"([\d.]+) frames/s", shown).group(1)) == pytest.approx(stats["fps"], abs=0.06), shown
    assert re.fullmatch(r"round trip \d+ ms \(server \d+ ms\)", latency_text), latency_text
    assert stats["fps"] > FPS_FLOOR and stats["errors"] == 0
    report = {"fps": round(stats["fps"], 1), "round_trip_ms": round(stats["latencyMs"], 1),
              "server_ms": round(stats["serverMs"], 1), "frames": stats["frames"]}
    print(f"\nlive page: {json.dumps(report)}")

    browser.find_element(By.ID, "split").click()
    browser.find_element(By.ID, "show-landmarks").click()
    time.sleep(0.5)
    shot = os.environ.get("FACELITE_WEB_SCREENSHOT") or str(tmp_path / "page.png")
    assert browser.save_screenshot(shot)
    assert cv2.imread(shot) is not None


def test_photo_mode_returns_the_made_up_photo(server, browser, tmp_path):
    photo = tmp_path / "face.jpg"
    image = sample_frames(1, start=10)[0]
    cv2.imwrite(str(photo), image)
    if not browser.current_url.startswith(server.url):
        browser.get(server.url + "/")
    browser.find_element(By.ID, "tab-photo").click()
    browser.find_element(By.CSS_SELECTOR, ".swatch[data-look=bold]").click()
    browser.find_element(By.ID, "photo-input").send_keys(str(photo))
    wait(browser, lambda d: d.execute_script(
        "const i = document.getElementById('photo-result'); return !i.hidden && i.complete && i.naturalWidth"),
        what="the rendered photo")
    assert browser.find_element(By.ID, "photo-result").get_attribute("data-faces") == "1"
    pixels = browser.execute_script("""
        const img = document.getElementById('photo-result'), c = document.createElement('canvas');
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        c.getContext('2d').drawImage(img, 0, 0); return c.toDataURL('image/png');""")
    out = data_url_image(pixels)
    assert out.shape == image.shape
    assert browser.find_element(By.ID, "photo-download").get_attribute("download") == "face.makeup.jpg"
    req = urllib.request.Request(server.url + "/api/faces", data=photo.read_bytes(),
                                 headers={"Content-Type": "image/jpeg"})
    with urllib.request.urlopen(req, timeout=60) as r:
        (face,) = json.loads(r.read())["faces"]
    assert lip_change(image, out, face["landmarks"]) > 15
    # Leaving live mode closed the page's session on the server.
    with urllib.request.urlopen(server.url + "/api/status", timeout=30) as r:
        assert json.loads(r.read())["sessions"] == 0


def test_the_page_fits_a_phone_screen(server, browser):
    browser.set_window_size(390, 844)  # a phone held upright (CSS pixels)
    try:
        browser.get(server.url + "/")
        wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".swatch[data-look=bold]"), what="look swatches")
        layout = browser.execute_script("""
            const r = (id) => document.getElementById(id).getBoundingClientRect();
            return {scroll: document.documentElement.scrollWidth, width: window.innerWidth,
                    stage: r('stage'), controls: r('controls'), start: r('start')};""")
        assert layout["scroll"] <= layout["width"], "the page scrolls sideways on a phone"
        assert layout["controls"]["top"] >= layout["stage"]["bottom"] - 1, "controls should stack below the frame"
        assert layout["stage"]["width"] <= layout["width"] and layout["start"]["height"] >= 36  # a finger-size button
    finally:
        browser.set_window_size(1100, 900)
