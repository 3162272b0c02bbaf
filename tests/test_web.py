"""The browser try-on server (`python -m tracker.web`), run for real: a uvicorn subprocess on a
free loopback port, called over HTTP and WebSockets with frames of the bundled sample clip."""
import json
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("starlette", reason="the web extra is not installed (pip install -e '.[web]')")
pytest.importorskip("uvicorn", reason="the web extra is not installed (pip install -e '.[web]')")
pytest.importorskip("websockets", reason="the web extra is not installed (pip install -e '.[web]')")

from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from tests.web_helpers import corner_change, lip_change  # noqa: E402
from tools.web_server import ServerProcess, sample_frames, sample_jpegs, split_frame_message  # noqa: E402
from tracker.web.__main__ import main as web_main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "tracker" / "web" / "static"
MAX_PIXELS = 4_000_000


@pytest.fixture(scope="module")
def server():
    with ServerProcess("--max-sessions", "2", "--max-upload-mb", "1", "--max-megapixels", "4") as srv:
        yield srv


@pytest.fixture(scope="module")
def frame():
    """Frame 10 of the sample clip (one face) and its JPEG bytes."""
    image = sample_frames(1, start=10)[0]
    return image, cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()


def call(url, data=None, content_type="image/jpeg", method=None):
    """-> (status, headers, body) of one HTTP request; error statuses are returned, not raised."""
    headers = {"Content-Type": content_type} if data is not None else {}
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def post_raw(url, path, body, headers) -> tuple[int, dict]:
    """POST over a plain socket, reading the answer even when the server stops reading the body
    early (as it does past the byte limit; urllib would only report the broken pipe)."""
    host, port = url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        try:
            sock.sendall(head.encode() + b"\r\n")
            for i in range(0, len(body), 65536):
                sock.sendall(body[i:i + 65536])
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused mid-body: the answer is already there
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < _length(answer):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    status_line, rest = answer.split(b"\r\n", 1)
    return int(status_line.split()[1]), json.loads(rest.split(b"\r\n\r\n", 1)[1])


def _length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


def test_uploads_past_the_byte_limit_are_refused_before_they_are_read(server):
    body = b"\xff\xd8\xff" + bytes(3 * 2**20)
    code, answer = post_raw(server.url, "/api/render", body, {"Content-Type": "image/jpeg",
                                                              "Content-Length": len(body)})
    assert code == 413 and f"upload too large: {len(body)} bytes, the limit is {2**20}" in answer["error"]
    # Without a declared length (chunked), the limit is checked while the body streams in.
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (body[i:i + 65536] for i in range(0, len(body), 65536)))
    code, answer = post_raw(server.url, "/api/faces", chunks + b"0\r\n\r\n",
                            {"Content-Type": "image/jpeg", "Transfer-Encoding": "chunked"})
    assert code == 413 and f"upload too large: over {2**20} bytes" in answer["error"]
    assert status(server)["api_requests"] == 0


def test_api_requests_over_the_cap_get_503(server, frame):
    # Two uploads in progress (headers sent, body not yet) hold the server's two API slots.
    held = []
    host, port = server.url.split("//")[1].split(":")
    for _ in range(2):
        sock = socket.create_connection((host, int(port)), timeout=30)
        sock.sendall(f"POST /api/faces HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/jpeg\r\n"
                     f"Content-Length: {len(frame[1])}\r\n\r\n".encode() + frame[1][:100])
        held.append(sock)
    try:
        deadline = time.monotonic() + 10
        while status(server)["api_requests"] < 2:
            assert time.monotonic() < deadline, status(server)
            time.sleep(0.05)
        code, _, body = call(server.url + "/api/faces", frame[1])
        assert code == 503
        assert "server busy: 2 API requests in progress, the limit is 2" in json.loads(body)["error"]
        held[0].sendall(frame[1][100:])  # the first upload completes and is answered
        assert b"200 OK" in held[0].recv(65536)
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 10
    while status(server)["api_requests"]:
        assert time.monotonic() < deadline, status(server)
        time.sleep(0.05)
    assert call(server.url + "/api/faces", frame[1])[0] == 200


def decode(body: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def status(server) -> dict:
    return json.loads(call(server.url + "/api/status")[2])


# ------------------------------------------------------------------ page and CLI

def test_serves_on_loopback_and_the_page_loads_nothing_from_elsewhere(server):
    assert server.url.startswith("http://127.0.0.1:")
    code, headers, body = call(server.url + "/")
    assert code == 200 and b'src="/static/app.js"' in body
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    for name in ("app.js", "style.css"):
        assert call(f"{server.url}/static/{name}")[0] == 200
    for path in STATIC.iterdir():  # no CDN, no external font or script
        text = path.read_text()
        assert "http://" not in text and "https://" not in text, path.name
    looks = json.loads(call(server.url + "/api/looks")[2])
    assert {"bold", "natural", "evening"} <= {item["name"] for item in looks["looks"]}
    assert looks["default"] == "natural"


def test_cli_refuses_bad_arguments_with_one_message(capsys):
    assert web_main(["--certfile", "cert.pem"]) == 2
    assert "--certfile and --keyfile go together" in capsys.readouterr().err
    assert web_main(["--certfile", "nope.pem", "--keyfile", "nope.key"]) == 2
    assert "--certfile nope.pem: file not found" in capsys.readouterr().err
    assert web_main(["--max-sessions", "0"]) == 2
    assert "--max-sessions" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        assert web_main(["--port", str(port)]) == 2
        assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    assert web_main(["--port", "0", "--weights", "no-such-model"]) == 2
    assert "landmark weights not found: no-such-model" in capsys.readouterr().err


# ------------------------------------------------------------------ HTTP API

def test_render_api_makes_up_the_lips_and_nothing_far_from_the_face(server, frame):
    image, jpeg = frame
    code, headers, body = call(server.url + "/api/faces", jpeg)
    assert code == 200
    (face,) = json.loads(body)["faces"]
    code, headers, body = call(server.url + "/api/render?look=bold", jpeg)
    assert code == 200 and headers["Content-Type"] == "image/jpeg" and headers["X-Faces"] == "1"
    out = decode(body)
    assert out.shape == image.shape
    assert lip_change(image, out, face["landmarks"]) > 15  # bold: red matte lipstick
    assert corner_change(image, out) < 3                     # JPEG noise only

    code, headers, body = call(server.url + "/api/render?look=none&format=png", jpeg)
    assert code == 200 and headers["Content-Type"] == "image/png"
    assert lip_change(image, decode(body), face["landmarks"]) < 2  # no makeup: the photo as sent

    code, _, body = call(server.url + "/api/render?look=natural&lip_color=%232050d0&intensity=1", jpeg)
    blue = decode(body)
    code, _, body = call(server.url + "/api/render?look=natural&lip_color=%232050d0&intensity=0.2", jpeg)
    faint = decode(body)
    assert lip_change(image, blue, face["landmarks"]) > lip_change(image, faint, face["landmarks"]) + 5


def test_faces_api_returns_the_trackers_landmarks(server, frame):
    from tracker.landmarks import Landmarker
    from tracker.tracking import Tracker

    image, jpeg = frame
    code, headers, body = call(server.url + "/api/faces", jpeg)
    assert code == 200 and headers["Content-Type"] == "application/json"
    result = json.loads(body)
    assert (result["width"], result["height"]) == (640, 480)
    (face,) = result["faces"]
    points = np.asarray(face["landmarks"])
    # A tracked face scores at least the model's tracking threshold (a softmax peak: about 0.3).
    threshold = Landmarker("demo", backend="numpy").model.config["tracking"]["min_score"]
    assert points.shape == (68, 2) and threshold <= face["score"] <= 1
    x0, y0, x1, y1 = face["box"]
    assert x0 <= points[:, 0].min() + 0.01 and points[:, 0].max() <= x1 + 0.01
    assert y0 <= points[:, 1].min() + 0.01 and points[:, 1].max() <= y1 + 0.01
    # The same Tracker the CLIs use, in this process, on the same decoded image.
    with Tracker.from_weights(static_image_mode=True, threads=1) as tracker:
        (expected,) = tracker.process(decode(jpeg))
    np.testing.assert_allclose(points, expected.landmarks, atol=0.02)


def _png(width, height) -> bytes:
    return cv2.imencode(".png", np.zeros((height, width, 3), np.uint8))[1].tobytes()


@pytest.mark.parametrize("name, data, content_type, code, message", [
    ("junk bytes", b"this is not an image at all", "image/jpeg", 400, "not a JPEG, PNG or WebP image"),
    ("empty body", b"", "image/jpeg", 400, "empty body"),
    ("truncated JPEG", None, "image/jpeg", 400, "cannot decode the image/jpeg image"),
    ("huge image", "huge", "image/png", 413, "image too large: 3000x2000 = 6000000 pixels, the limit is 4000000"),
    ("wrong content type", None, "text/plain", 415, "Content-Type text/plain is not an image"),
    ("form upload", None, "application/x-www-form-urlencoded", 415, "is not an image"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 30 else "")
def test_bad_uploads_get_their_status_and_message(server, frame, name, data, content_type, code, message):
    jpeg = frame[1]
    if data is None:
        data = jpeg[:len(jpeg) // 3] if name == "truncated JPEG" else jpeg
    elif data == "huge":
        data = _png(3000, 2000)  # a few kB that would decode to 18 MB: refused from its header
        assert len(data) < 100_000
    for path in ("/api/render", "/api/faces"):
        got, headers, body = call(server.url + path, data, content_type)
        assert got == code, (path, body)
        assert message in json.loads(body)["error"], body
    assert status(server)["api_requests"] == 0


@pytest.mark.parametrize("query, message", [
    ("look=glam", "unknown look 'glam'"),
    ("lip_color=reddish", "invalid colour 'reddish'"),
    ("intensity=2", "intensity='2': expected a number in [0, 1]"),
    ("lip_finish=satin", "lip_finish='satin'"),
    ("format=gif", "format='gif'"),
    ("colour=red", "unknown option(s) colour"),
])
def test_bad_options_are_named(server, frame, query, message):
    code, _, body = call(f"{server.url}/api/render?{query}", frame[1])
    assert code == 400 and message in json.loads(body)["error"]


@pytest.mark.parametrize("ext, params", [
    (".jpg", []), (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]), (".png", []),
    (".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]), (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]),  # lossy, lossless
], ids=["jpeg", "progressive-jpeg", "png", "webp-lossy", "webp-lossless"])
def test_image_size_is_read_from_the_header_of_each_format(ext, params):
    from tracker.web.engine import Limits, RequestError, decode_image, probe_image

    image = sample_frames(1, start=3)[0][:437, :601]  # odd sizes: no rounding hides a wrong field
    data = cv2.imencode(ext, image, params)[1].tobytes()
    kind, w, h = probe_image(data)
    assert (w, h) == (601, 437) and kind.endswith(ext.strip(".").replace("jpg", "jpeg"))
    assert decode_image(data, Limits()).shape == image.shape
    with pytest.raises(RequestError) as refused:
        decode_image(data, Limits(max_pixels=601 * 437 - 1))
    assert refused.value.status == 413 and "601x437" in refused.value.message


# ------------------------------------------------------------------ live sessions

def recv_frame(ws):
    message = ws.recv(timeout=60)
    assert isinstance(message, bytes), message
    header, jpeg = split_frame_message(message)
    return header, decode(jpeg)


def hello(ws) -> dict:
    first = json.loads(ws.recv(timeout=30))
    assert first["type"] == "hello"
    return first


def test_live_session_tracks_renders_and_survives_bad_frames(server):
    raws = sample_frames(8, start=5)
    jpegs = sample_jpegs(8, start=5, quality=95)
    with connect(server.ws_url, max_size=None) as ws:
        info = hello(ws)
        assert "bold" in info["looks"] and info["limits"]["max_pixels"] == MAX_PIXELS
        ws.send(json.dumps({"type": "settings", "look": "bold"}))
        ids = set()
        for k, (raw, jpeg) in enumerate(zip(raws, jpegs)):
            ws.send(jpeg)
            header, out = recv_frame(ws)
            assert header["seq"] == k + 1 and header["look"] == "bold" and header["dropped"] == 0
            assert out.shape == raw.shape
            (face,) = header["faces"]
            ids.add(face["track_id"])
            assert lip_change(raw, out, face["landmarks"]) > 15
            assert header["times"]["server_ms"] >= header["times"]["track_ms"] > 0
        assert len(ids) == 1  # one track over the frames: the session keeps its tracker

        ws.send(b"\x00garbage")  # a bad frame: an error for this frame, the session goes on
        error = json.loads(ws.recv(timeout=30))
        assert error["type"] == "error" and error["seq"] == 9 and "not a JPEG" in error["message"]
        ws.send(json.dumps({"type": "settings", "look": "glam"}))
        assert "unknown look 'glam'" in json.loads(ws.recv(timeout=30))["message"]
        ws.send("{not json")
        assert "not JSON" in json.loads(ws.recv(timeout=30))["message"]
        ws.send(json.dumps({"type": "settings", "look": "none"}))
        ws.send(jpegs[0])
        header, out = recv_frame(ws)
        assert header["seq"] == 10 and header["look"] is None
        assert lip_change(raws[0], out, header["faces"][0]["landmarks"]) < 2
        assert header["faces"][0]["track_id"] in ids  # still the same track after the errors
    wait_for_sessions(server, 0)


def wait_for_sessions(server, count, timeout=10.0):
    deadline = time.monotonic() + timeout
    while status(server)["sessions"] != count:
        assert time.monotonic() < deadline, status(server)
        time.sleep(0.05)


def test_server_keeps_only_the_newest_frame(server):
    jpegs = sample_jpegs(6, start=20)
    with connect(server.ws_url, max_size=None) as ws:
        hello(ws)
        for jpeg in jpegs:  # a client that does not wait: the server must not queue these
            ws.send(jpeg)
        answers = []
        while not answers or answers[-1]["seq"] != len(jpegs):
            answers.append(recv_frame(ws)[0])
        assert len(answers) < len(jpegs)
        assert len(answers) + answers[-1]["dropped"] == len(jpegs)
        assert [a["seq"] for a in answers] == sorted(a["seq"] for a in answers)


def test_sessions_over_the_cap_get_503_and_others_keep_working(server, frame):
    jpeg = frame[1]
    with connect(server.ws_url, max_size=None) as a, connect(server.ws_url, max_size=None) as b:
        hello(a), hello(b)
        with pytest.raises(InvalidStatus) as refused:
            connect(server.ws_url, open_timeout=30)
        assert refused.value.response.status_code == 503
        assert "server busy: 2 live sessions in progress, the limit is 2" in \
            json.loads(refused.value.response.body)["error"]
        # One client breaks its connection mid-frame; the other is not disturbed.
        a.send(jpeg)
        a.socket.shutdown(socket.SHUT_RDWR)
        a.socket.close()
        for _ in range(3):
            b.send(jpeg)
            header, _ = recv_frame(b)
            assert len(header["faces"]) == 1
    wait_for_sessions(server, 0)
    with connect(server.ws_url, max_size=None) as c:  # the slots were given back
        hello(c)
        c.send(jpeg)
        assert len(recv_frame(c)[0]["faces"]) == 1


def test_clients_side_by_side_each_get_their_own_frames(server):
    jpegs = {name: sample_jpegs(4, start=s) for name, s in (("a", 0), ("b", 60))}
    results, errors = {}, []

    def client(name):
        try:
            with connect(server.ws_url, max_size=None) as ws:
                hello(ws)
                ws.send(json.dumps({"type": "settings", "look": "evening" if name == "a" else "bold"}))
                results[name] = []
                for jpeg in jpegs[name]:
                    ws.send(jpeg)
                    results[name].append(recv_frame(ws)[0])
        except Exception as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in jpegs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert [h["look"] for h in results["a"]] == ["evening"] * 4
    assert [h["look"] for h in results["b"]] == ["bold"] * 4
    assert [h["seq"] for h in results["b"]] == [1, 2, 3, 4]


# ------------------------------------------------------------------ HTTPS and the load tool

@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_https_with_certfile_and_keyfile(tmp_path, frame):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True, timeout=60)
    context = ssl.create_default_context(cafile=str(cert))
    with ServerProcess("--certfile", str(cert), "--keyfile", str(key), "--idle-timeout", "1.5") as srv:
        assert srv.url.startswith("https://127.0.0.1:")
        with urllib.request.urlopen(srv.url + "/api/status", context=context, timeout=30) as r:
            assert json.loads(r.read())["sessions"] == 0
        with connect(srv.ws_url, ssl=context, max_size=None) as ws:
            hello(ws)
            ws.send(frame[1])
            assert len(recv_frame(ws)[0]["faces"]) == 1
            with pytest.raises(ConnectionClosed) as closed:  # then silence: the server hangs up
                ws.recv(timeout=30)
            assert closed.value.rcvd.code == 1000 and closed.value.rcvd.reason == "idle for 1.5 s"
        with urllib.request.urlopen(srv.url + "/api/status", context=context, timeout=30) as r:
            assert json.loads(r.read())["sessions"] == 0



def test_a_bad_certificate_is_refused_before_serving(tmp_path, capsys):
    (tmp_path / "cert.pem").write_text("not a certificate")
    (tmp_path / "key.pem").write_text("not a key")
    assert web_main(["--port", "0", "--certfile", str(tmp_path / "cert.pem"),
                     "--keyfile", str(tmp_path / "key.pem")]) == 2
    assert "cannot use --certfile" in capsys.readouterr().err


def test_load_tool_reports_latency_and_memory():
    # run as it is run by hand: the tests import no benchmark module
    run = subprocess.run([sys.executable, "-m", "tools.bench.load_web", "--clients", "2", "--frames", "5",
                          "--seconds", "60"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "2 clients" in out and "server RSS" in out and "| all | 10 |" in out
