"""The `playground` command: `serve` the playground, or `bench` it."""

import argparse
import gc
import os
import socket
import sys

from app.settings import Settings


def server_config(app, settings, log_level: str = "info"):
    """uvicorn's settings for the playground (also what the real-server tests run)."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        ws_max_size=settings.ws_max_message_bytes,
        # Frames are small; compression would only add a decompression-bomb surface.
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=5,
        log_level=log_level,
    )


def serve_settings(args: argparse.Namespace) -> Settings:
    """The settings `serve` runs with: PLAYGROUND_* variables, overridden by --host and --port."""
    given = {"host": args.host, "port": args.port}
    return Settings(**{name: value for name, value in given.items() if value is not None})


def check_port(host: str, port: int) -> None:
    """Exits at once if host:port cannot be listened on, rather than after TensorFlow's start-up."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds it
            sock.bind(address)
    except OSError as exc:
        sys.exit(
            f"playground: cannot listen on {host}:{port}: {exc.strerror}.\n"
            "Another server may be running there: stop it (Ctrl-C in its terminal), or pick "
            "another port: `make run PORT=8001` or `playground serve --port 8001`."
        )


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    settings = serve_settings(args)
    check_port(settings.host, settings.port)

    from app.main import create_app

    _configure_tensorflow(settings.tf_threads)
    app = create_app(settings)
    # TensorFlow's import leaves a large heap; a full collection over it stalls every socket for
    # ~100 ms. Freezing it keeps collections to what the server allocates from now on.
    gc.freeze()
    uvicorn.Server(server_config(app, settings, args.log_level)).run()


def _configure_tensorflow(pool_threads: int) -> None:
    """One TF thread per pool worker, so parallel calls do not oversubscribe the cores."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(pool_threads)


def _bench(args: argparse.Namespace) -> None:
    from app.bench.run import main as bench_main

    bench_main(quick=args.quick)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="playground", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the playground")
    serve.add_argument(
        "--host", help="interface to listen on (default: PLAYGROUND_HOST or 127.0.0.1)"
    )
    serve.add_argument(
        "--port", type=int, help="port to listen on (default: PLAYGROUND_PORT or 8000)"
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    serve.set_defaults(func=_serve)
    bench = sub.add_parser("bench", help="measure the server and print a table")
    bench.add_argument("--quick", action="store_true", help="fewer samples, shorter windows")
    bench.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    sys.exit(main())
