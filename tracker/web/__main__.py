"""Serve the browser try-on: a page doing live makeup from the camera, a photo mode and an HTTP API.

usage: python -m tracker.web [--host 127.0.0.1] [--port 8000] [--certfile cert.pem --keyfile key.pem]
                             [--max-sessions N] [--max-upload-mb MB] [--max-megapixels MP]
                             [--idle-timeout S] [--workers N]
                             [--max-faces N] [--weights demo|lite|full|FILE] [--detector NAME]
                             [--backend numba|numpy] [--threads N]

Open the printed address in a browser. Browsers give a page the camera only on https or
on localhost: to use a phone on the same network, serve with --host 0.0.0.0 and
--certfile/--keyfile (a self-signed certificate will do; accept it on the phone once).
The server binds 127.0.0.1 unless --host says otherwise.

Limits: an upload or live frame of at most --max-upload-mb and --max-megapixels; at most
--max-sessions live sessions, and as many API requests in progress, at once (a 503
beyond). --workers threads run the model (default: the cores, 1 to 4), each on
--threads Numba threads (default 1).

Exit status: 0 stopped (Ctrl-C); 2 bad arguments, weights, certificate, an address that
cannot be bound, or the web extra not installed (one message on stderr).
"""
from __future__ import annotations

import argparse
import socket
import ssl
import sys
from pathlib import Path

from tracker.errors import TrackerError

MISSING_EXTRA = "the web server needs its extra: pip install -e \".[web]\" (or pip install 'facelite[web]')"


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    from nnlite.jit import available_cores
    from tracker.cli import add_engine_arguments

    parser = argparse.ArgumentParser(prog="python -m tracker.web", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; 0.0.0.0 for every network interface)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    parser.add_argument("--certfile", type=Path, help="TLS certificate (PEM) to serve https")
    parser.add_argument("--keyfile", type=Path, help="TLS private key (PEM) of --certfile")
    parser.add_argument("--max-sessions", type=_positive(int), default=4, metavar="N",
                        help="most live sessions at once, and most API requests in progress (default 4)")
    parser.add_argument("--max-upload-mb", type=_positive(float), default=15.0, metavar="MB",
                        help="largest upload or live frame, megabytes (default 15)")
    parser.add_argument("--max-megapixels", type=_positive(float), default=16.0, metavar="MP",
                        help="largest image, megapixels (default 16)")
    parser.add_argument("--idle-timeout", type=_positive(float), default=120.0, metavar="S",
                        help="close a live session that sent nothing for S seconds (default 120)")
    parser.add_argument("--workers", type=_positive(int), default=max(1, min(4, available_cores())),
                        metavar="N", help="model worker threads (default: the cores, 1 to 4)")
    add_engine_arguments(parser)
    return parser


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one); OSError naming the address."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed its message
        return int(exc.code or 0)
    if (args.certfile is None) != (args.keyfile is None):
        print("error: --certfile and --keyfile go together (a certificate and its private key)", file=sys.stderr)
        return 2
    for name, path in (("--certfile", args.certfile), ("--keyfile", args.keyfile)):
        if path is not None and not path.is_file():
            print(f"error: {name} {path}: file not found", file=sys.stderr)
            return 2
    if args.certfile is not None:
        try:  # the same check uvicorn makes, before the model is loaded
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(args.certfile, args.keyfile)
        except (ssl.SSLError, OSError) as exc:
            print(f"error: cannot use --certfile {args.certfile} / --keyfile {args.keyfile}: {exc}",
                  file=sys.stderr)
            return 2
    if args.max_faces < 1:
        print(f"error: --max-faces must be at least 1, got {args.max_faces}", file=sys.stderr)
        return 2
    if not 0 <= args.port <= 65535:
        print(f"error: --port must be in 0..65535, got {args.port}", file=sys.stderr)
        return 2
    try:
        import uvicorn

        from tracker.web.app import WebConfig, create_app
    except ImportError as exc:
        print(f"error: {MISSING_EXTRA} ({exc})", file=sys.stderr)
        return 2
    from tracker.web.engine import Engine, Limits

    try:
        sock = _listen(args.host, args.port)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    with sock:
        try:
            engine = Engine.load(args.weights, args.detector, max_faces=args.max_faces, backend=args.backend,
                                 threads=args.threads or 1)
        except TrackerError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        engine.warmup()
        limits = Limits(max_upload_bytes=int(args.max_upload_mb * 2**20),
                        max_pixels=int(args.max_megapixels * 1e6))
        app = create_app(engine, WebConfig(limits=limits, max_sessions=args.max_sessions, workers=args.workers,
                                           idle_timeout=args.idle_timeout))
        config = uvicorn.Config(app, log_level="warning", server_header=False, ws_per_message_deflate=False,
                                ws_max_size=limits.max_upload_bytes + 4096,
                                ssl_certfile=args.certfile, ssl_keyfile=args.keyfile)
        try:
            config.load()  # reads the certificate now, so a bad one is an error here
        except (ssl.SSLError, OSError) as exc:
            print(f"error: cannot use --certfile {args.certfile} / --keyfile {args.keyfile}: {exc}",
                  file=sys.stderr)
            return 2
        host, port = sock.getsockname()[:2]
        scheme = "https" if args.certfile is not None else "http"
        shown = f"[{host}]" if ":" in host else host
        print(f"serving on {scheme}://{shown}:{port}", flush=True)
        if host in ("0.0.0.0", "::"):
            print(f"  (every interface: open {scheme}://THIS-MACHINE'S-ADDRESS:{port} on the other device)",
                  flush=True)
        uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
