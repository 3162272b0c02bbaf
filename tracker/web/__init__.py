"""Browser try-on: `python -m tracker.web` serves a page that does live makeup from the camera.

The page (plain HTML/CSS/JS in `static/`, nothing from any other site) sends camera
frames over a WebSocket; the server tracks them with one `tracker.tracking.Tracker` per
connection over shared models and renders them with `tracker.makeup.render`, like the
CLIs. A photo mode and an HTTP API (`POST /api/render`, `POST /api/faces`) do the same
for single images.

    pip install -e ".[web]"        # starlette, uvicorn, websockets (the core install stays lean)
    python -m tracker.web          # serving on http://127.0.0.1:8000

Embedding: `tracker.web.app.create_app(engine, config)` is a Starlette (ASGI) app over a
`tracker.web.engine.Engine`; the engine module needs no web library. This package's
`__init__` imports nothing, so a missing extra is reported by the CLI, not by an ImportError.
"""
