"""The try-on web app (Starlette on any ASGI server; `python -m tracker.web` runs it on uvicorn).

Routes:
    GET  /              the page (plain HTML/CSS/JS from tracker/web/static, no external asset)
    GET  /api/looks     {"default": name, "looks": [{"name", "description", "lips": hex | null}]}
    GET  /api/status    {"sessions", "max_sessions", "api_requests", "limits": {...}}
    POST /api/render    image bytes (Content-Type image/jpeg|png|webp) + query options
                        (look, lip_color, lip_finish, intensity, makeup, landmarks, format)
                        -> the rendered image (image/jpeg or image/png; header X-Faces: count)
    POST /api/faces     image bytes -> {"width", "height", "faces": [{track_id, score, box, landmarks}]}
    WS   /ws            the live session (protocol below)

Live protocol: the client sends each camera frame as one binary message (JPEG bytes) and
settings as text, {"type": "settings", <the /api/render options>}. For each frame the server
answers one binary message: a 4-byte big-endian length N, N bytes of UTF-8 JSON
{"type": "frame", "seq", "width", "height", "faces", "look", "times": {"track_ms",
"render_ms", "server_ms"}, "dropped"}, then the rendered JPEG; or, for a frame or settings
it cannot use, a text message {"type": "error", "message", "seq"} (the session goes on).
Frames never queue: the page sends the next frame when the previous answer is back, and
the server keeps only the newest frame that arrived while it was busy (the others are
counted in "dropped" and never answered).

Errors are JSON {"error": message} with 400 (bad input), 408 (body not in within
BODY_TIMEOUT_S), 413 (too many bytes or pixels), 415 (not an image content type) or 503 (more sessions or API requests in flight than
`max_sessions`). Model work runs on a thread pool, never on the event loop.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from tracker.makeup import DEFAULT_LOOK, load_look
from tracker.web.engine import (IMAGE_TYPES, OUTPUT_FORMATS, Engine, Limits, RequestError, Settings,
                                decode_image, encode_image, faces_to_json)

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
# The page loads nothing from anywhere else; camera frames go out only over this origin's socket.
PAGE_POLICY = ("default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; "
               "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
BODY_TIMEOUT_S = 30.0   # an upload must arrive within this, so a trickling client cannot hold a slot
BUSY_CLOSE_CODE = 1013  # "try again later", when the server cannot send an HTTP 503 to a WebSocket


@dataclass(frozen=True)
class WebConfig:
    """Server limits: per upload / frame (`limits`), live sessions and API requests in flight
    at once (`max_sessions` each), model worker threads (`workers`), and the seconds a live
    session may stay silent before the server closes it (`idle_timeout`), so a forgotten tab
    does not hold a session slot for ever."""
    limits: Limits = Limits()
    max_sessions: int = 4
    workers: int = 2
    idle_timeout: float = 120.0

    def __post_init__(self):
        if self.max_sessions < 1 or self.workers < 1 or not self.idle_timeout > 0:
            raise ValueError(f"max_sessions and workers must be >= 1 and idle_timeout > 0, got {self}")


@dataclass
class _State:
    sessions: int = 0
    api_requests: int = 0
    frames: int = 0
    pool: ThreadPoolExecutor | None = None
    started: float = field(default_factory=time.monotonic)


def _error(exc: RequestError) -> JSONResponse:
    return JSONResponse({"error": exc.message}, status_code=exc.status)


def _busy_message(what: str, count: int, limit: int) -> str:
    return (f"server busy: {count} {what} in progress, the limit is {limit} (--max-sessions); "
            "try again later")


async def _read_image_body(request: Request, limits: Limits) -> bytes:
    """The request body, refused as soon as it passes the byte limit; RequestError 415/413."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in IMAGE_TYPES and kind != "image/jpg":
        raise RequestError(415, f"Content-Type {kind or '(none)'} is not an image: send the image's bytes "
                                f"with Content-Type {', '.join(IMAGE_TYPES)} "
                                "(curl: --data-binary @face.jpg -H 'Content-Type: image/jpeg')")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_upload_bytes:
        raise RequestError(413, f"upload too large: {declared} bytes, the limit is {limits.max_upload_bytes}")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limits.max_upload_bytes:
            raise RequestError(413, f"upload too large: over {limits.max_upload_bytes} bytes, the limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _frame_message(header: dict, jpeg: bytes) -> bytes:
    head = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack(">I", len(head)) + head + jpeg


def create_app(engine: Engine, config: WebConfig = WebConfig()) -> Starlette:
    """The ASGI app serving the page, the HTTP API and live sessions over `engine`'s models."""
    state = _State()
    limits = config.limits

    async def in_pool(fn, *args):
        return await asyncio.get_running_loop().run_in_executor(state.pool, fn, *args)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": PAGE_POLICY,
                                                           "Cache-Control": "no-cache"})

    async def looks(request: Request) -> Response:
        items = []
        for name in engine.looks:
            look = load_look(name)
            items.append({"name": name, "description": look.description,
                          "lips": look.lips.color if look.lips is not None else None})
        return JSONResponse({"default": DEFAULT_LOOK, "looks": items})

    async def status(request: Request) -> Response:
        return JSONResponse({"sessions": state.sessions, "max_sessions": config.max_sessions,
                             "api_requests": state.api_requests, "frames": state.frames,
                             "workers": config.workers, "uptime_s": round(time.monotonic() - state.started, 1),
                             "limits": {"max_upload_bytes": limits.max_upload_bytes,
                                        "max_pixels": limits.max_pixels}})

    async def api_call(request: Request, work) -> Response:
        """Shared by the API routes: the cap on requests in flight, body, decoding, errors."""
        if state.api_requests >= config.max_sessions:
            return _error(RequestError(503, _busy_message("API requests", state.api_requests,
                                                          config.max_sessions)))
        state.api_requests += 1
        try:
            settings = Settings.parse(request.query_params)
            try:
                body = await asyncio.wait_for(_read_image_body(request, limits), BODY_TIMEOUT_S)
            except asyncio.TimeoutError:
                raise RequestError(408, f"upload too slow: the body did not arrive within {BODY_TIMEOUT_S:.0f} s") \
                    from None
            return await in_pool(work, body, settings)  # decoding is model-side work too
        except RequestError as exc:
            return _error(exc)
        except ClientDisconnect:  # gone mid-upload: nobody to answer
            return Response(status_code=400)
        except Exception as exc:  # a bug: this request fails, the server goes on
            log.exception("%s failed", request.url.path)
            return JSONResponse({"error": f"internal error: {exc}"}, status_code=500)
        finally:
            state.api_requests -= 1

    # The work functions run in the pool; a RequestError they raise reaches api_call's handler.
    def render_work(body: bytes, settings: Settings) -> Response:
        faces, out = engine.render_photo(decode_image(body, limits), settings)
        kind = OUTPUT_FORMATS[settings.format][0]
        return Response(encode_image(out, settings.format), media_type=kind,
                        headers={"X-Faces": str(len(faces)), "Cache-Control": "no-store"})

    def faces_work(body: bytes, settings: Settings) -> Response:
        image = decode_image(body, limits)
        faces = engine.find_faces(image)
        return JSONResponse({"width": image.shape[1], "height": image.shape[0],
                             "coordinates": "image pixels, 0-based pixel centres",
                             "faces": faces_to_json(faces)})

    async def render_route(request: Request) -> Response:
        return await api_call(request, render_work)

    async def faces_route(request: Request) -> Response:
        return await api_call(request, faces_work)

    async def live(ws: WebSocket) -> None:
        if state.sessions >= config.max_sessions:
            message = _busy_message("live sessions", state.sessions, config.max_sessions)
            try:
                await ws.send_denial_response(JSONResponse({"error": message}, status_code=503))
            except RuntimeError:  # the server cannot answer a WebSocket with HTTP: close with a reason
                await ws.accept()
                await ws.close(code=BUSY_CLOSE_CODE, reason=message[:120])
            return
        state.sessions += 1
        try:
            await ws.accept()
            await _run_session(ws)
        finally:
            state.sessions -= 1

    async def _run_session(ws: WebSocket) -> None:
        session = engine.session()
        settings = Settings()
        newest: list = []             # at most one frame: (seq, bytes), the newest not yet taken
        arrived = asyncio.Event()
        send_lock = asyncio.Lock()
        counters = {"seq": 0, "dropped": 0}
        running: list = []            # the frame job in the pool, if any (it cannot be cancelled)

        async def send(kind: str, payload) -> None:
            async with send_lock:
                if kind == "bytes":
                    await ws.send_bytes(payload)
                else:
                    await ws.send_text(json.dumps(payload))

        def process(seq: int, data: bytes, settings: Settings):
            start = time.perf_counter()
            image = decode_image(data, limits)
            result = session.process(image, settings)
            jpeg = encode_image(result.image)
            header = {"type": "frame", "seq": seq, "width": image.shape[1], "height": image.shape[0],
                      "faces": faces_to_json(result.faces), "look": settings.look,
                      "times": {"track_ms": round(1000 * result.times.track, 2),
                                "render_ms": round(1000 * result.times.render, 2),
                                "server_ms": round(1000 * (time.perf_counter() - start), 2)},
                      "dropped": counters["dropped"]}
            return _frame_message(header, jpeg)

        async def worker() -> None:
            while True:
                await arrived.wait()
                arrived.clear()
                if not newest:
                    continue
                seq, data = newest.pop()
                job = asyncio.get_running_loop().run_in_executor(state.pool, process, seq, data, settings)
                running[:] = [job]
                try:
                    message = await asyncio.shield(job)  # a cancelled session still waits for it below
                except RequestError as exc:
                    await send("text", {"type": "error", "message": exc.message, "seq": seq})
                    continue
                except Exception as exc:  # a bug must not end the other sessions, nor this one
                    log.exception("live frame %d failed", seq)
                    await send("text", {"type": "error", "message": f"internal error on this frame: {exc}",
                                        "seq": seq})
                    continue
                state.frames += 1
                await send("bytes", message)

        task = asyncio.create_task(worker())
        try:
            await send("text", {"type": "hello", "looks": list(engine.looks), "default": DEFAULT_LOOK,
                                "max_faces": engine.max_faces,
                                "limits": {"max_upload_bytes": limits.max_upload_bytes,
                                           "max_pixels": limits.max_pixels}})
            while True:
                try:
                    message = await asyncio.wait_for(ws.receive(), config.idle_timeout)
                except asyncio.TimeoutError:
                    await ws.close(code=1000, reason=f"idle for {config.idle_timeout:g} s")
                    break
                if message["type"] == "websocket.disconnect":
                    break
                if message.get("bytes") is not None:
                    counters["seq"] += 1
                    if newest:
                        counters["dropped"] += 1  # the older one was never started: it is stale now
                        newest.clear()
                    newest.append((counters["seq"], message["bytes"]))
                    arrived.set()
                elif message.get("text") is not None:
                    try:
                        settings = _parse_settings(message["text"])
                    except RequestError as exc:
                        await send("text", {"type": "error", "message": exc.message})
                if task.done():
                    break  # the worker could not send: the connection is gone
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the client went away mid-message; only this session ends
        finally:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            for job in running:  # the tracker is closed only after its last frame is done with it
                with contextlib.suppress(BaseException):
                    await job
            session.close()

    @contextlib.asynccontextmanager
    async def lifespan(app):
        state.pool = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="facelite-web")
        try:
            yield
        finally:
            state.pool.shutdown(wait=True, cancel_futures=True)

    routes = [
        Route("/", index),
        Route("/api/looks", looks),
        Route("/api/status", status),
        Route("/api/render", render_route, methods=["POST"]),
        Route("/api/faces", faces_route, methods=["POST"]),
        WebSocketRoute("/ws", live),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.web = state
    return app


def _parse_settings(text: str) -> Settings:
    """A settings message -> Settings; RequestError 400 on bad JSON or options."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RequestError(400, f"settings message is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("type") != "settings":
        raise RequestError(400, 'expected a settings message {"type": "settings", ...}')
    return Settings.parse({k: v for k, v in data.items() if k != "type"})
