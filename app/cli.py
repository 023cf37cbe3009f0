"""The `playground` command: `serve` the playground, run its jobs (`worker`), or `bench` it."""

import argparse
import gc
import os
import socket
import sys

from pydantic import ValidationError

from app.settings import Settings


def server_config(app, settings, log_level: str = "info"):
    """uvicorn's settings for the playground (also what the real-server tests run). Its logs go
    through the root logger, as `configure_logging` formats them."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        ws_max_size=settings.ws_max_message_bytes,
        ws_ping_interval=settings.ws_ping_interval,
        ws_ping_timeout=settings.ws_ping_timeout,
        # Frames are small; compression would only add a decompression-bomb surface.
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=5,
        log_level=log_level,
        log_config=None,
    )


def serve_settings(args: argparse.Namespace) -> Settings:
    """The settings `serve` runs with: PLAYGROUND_* variables, overridden by --host and --port."""
    given = {"host": args.host, "port": args.port}
    return load_settings(**{name: value for name, value in given.items() if value is not None})


def load_settings(**given) -> Settings:
    """Settings from the PLAYGROUND_* variables (and `given`); a value out of range exits with
    the variable, the rule and the value, not a traceback."""
    try:
        return Settings(**given)
    except ValidationError as exc:
        lines = [
            f"  PLAYGROUND_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}. "
            f"Received: {e['input']!r}"
            for e in exc.errors()
        ]
        sys.exit("playground: invalid settings:\n" + "\n".join(lines))


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
    from app.logging_setup import configure_logging

    settings = serve_settings(args)
    check_port(settings.host, settings.port)
    configure_logging(args.log_format, args.log_level)

    if args.workers > 1:
        _serve_workers(settings, args)
        return

    from app.main import create_app
    from app.shutdown import GracefulServer

    _configure_tensorflow(settings.tf_threads)
    app = create_app(settings)
    # TensorFlow's import leaves a large heap; a full collection over it stalls every socket for
    # ~100 ms. Freezing it keeps collections to what the server allocates from now on.
    gc.freeze()
    GracefulServer(server_config(app, settings, args.log_level), app.state.sockets).run()


def _serve_workers(settings: Settings, args: argparse.Namespace) -> None:
    """`--workers N`: uvicorn's supervisor and N `GracefulWorker` processes, each its own app
    (`worker_app`) on its own SO_REUSEPORT socket; a student's socket stays on the process that
    accepted it, and every worker closes its sockets with 1001 when the server stops."""
    import logging

    from uvicorn.supervisors import multiprocess

    from app.shutdown import GracefulWorker, RecyclingSupervisor

    # The workers build their settings and logging from the environment, as the first process did.
    os.environ.update(
        PLAYGROUND_HOST=settings.host,
        PLAYGROUND_PORT=str(settings.port),
        PLAYGROUND_LOG_FORMAT=args.log_format,
        PLAYGROUND_LOG_LEVEL=args.log_level,
    )
    config = server_config("app.cli:worker_app", settings, args.log_level)
    config.factory, config.workers = True, args.workers
    # The supervisor makes (and remakes, when one dies) its workers with its module's `Process`.
    multiprocess.Process = GracefulWorker
    logging.getLogger("uvicorn.error").info(
        "serving on http://%s:%d with %d workers%s",
        settings.host,
        settings.port,
        args.workers,
        f", each replaced past {settings.recycle_rss_mib} MiB" if settings.recycle_rss_mib else "",
    )
    RecyclingSupervisor(config, settings.recycle_rss_mib).run()


def worker_app():
    """The app of one `serve --workers` process: its own sessions, traces and pools."""
    from app.logging_setup import configure_logging
    from app.main import create_app

    configure_logging(os.environ["PLAYGROUND_LOG_FORMAT"], os.environ["PLAYGROUND_LOG_LEVEL"])

    settings = Settings()
    _configure_tensorflow(settings.tf_threads)
    app = create_app(settings)
    gc.freeze()
    return app


def _configure_tensorflow(pool_threads: int) -> None:
    """As many intra-op threads as training threads: XLA's CPU executables run on that pool, so
    with one thread every compiled call of the process took turns on one core (a class's RNN
    frames queued behind each other and its MLP ticks: slider p95 68 ms at 30 students, 41 with
    two). XLA's Eigen products stay single-threaded: split across a pool the other calls keep
    busy, an MLP tick waited for its slowest part (MLP frames at 19 fps in that class). The pool's
    idle threads sleep rather than spin: spinning, one LSTM student kept both cores ~80 % busy.

    Called before TensorFlow runs anything: its context takes these settings when it starts."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" not in flags:  # read at XLA's first compile: still to come
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false".strip()
    import tensorflow as tf
    from tensorflow.core.protobuf import config_pb2
    from tensorflow.python.eager import context

    # No public API sets this (ConfigProto.experimental); the context reads `_config` when it
    # starts, and tests/app/test_cli.py checks that it took.
    config = config_pb2.ConfigProto()
    config.experimental.disable_thread_spinning = True
    context.context()._config = config
    tf.config.threading.set_intra_op_parallelism_threads(pool_threads)
    tf.config.threading.set_inter_op_parallelism_threads(pool_threads)


def _worker(args: argparse.Namespace) -> None:
    settings = load_settings()
    if not settings.redis_url:
        sys.exit(
            "playground worker: set PLAYGROUND_REDIS_URL (e.g. redis://127.0.0.1:6379/0) to the "
            "Redis the servers use; without it the servers run their jobs themselves."
        )
    from redis.exceptions import ConnectionError as RedisConnectionError

    from app.jobs.redis_queue import work

    _configure_tensorflow(settings.tf_threads)
    try:
        work(settings, burst=args.burst)
    except RedisConnectionError as exc:
        sys.exit(f"playground worker: Redis at {settings.redis_url} cannot be reached: {exc}")


def _bench(args: argparse.Namespace) -> None:
    from app.bench.run import main as bench_main

    only = args.only.split(",") if args.only else None
    bench_main(quick=args.quick, load=args.load, clients_procs=args.clients_procs, only=only)


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
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes sharing the port, each with its own sessions and traces: "
        "capacity grows with the cores (default: 1)",
    )
    serve.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="text lines for a terminal, or JSON lines for a log collector (default: text)",
    )
    serve.set_defaults(func=_serve)
    worker = sub.add_parser(
        "worker", help="run CNN training jobs from the Redis queue (PLAYGROUND_REDIS_URL)"
    )
    worker.add_argument("--burst", action="store_true", help="stop once the queue is empty")
    worker.set_defaults(func=_worker)
    bench = sub.add_parser("bench", help="measure the server and print a table")
    bench.add_argument("--quick", action="store_true", help="fewer samples, shorter windows")
    bench.add_argument(
        "--clients-procs",
        type=int,
        default=2,
        help="processes the many-client benches run their clients in, apart from the server's "
        "(default: 2)",
    )
    bench.add_argument(
        "--load",
        action="store_true",
        help="instead: a class of simulated students, stepped up to the server's capacity, "
        "and 1,000 sessions opened and closed (memory, traces, threads)",
    )
    bench.add_argument(
        "--only",
        metavar="SECTIONS",
        help="run only these sections' benches, comma-separated lab slugs or 'rooms' "
        "(e.g. --only dogs,images)",
    )
    bench.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    sys.exit(main())
