"""The server's one logging setup: text lines for a terminal, or JSON lines for a log collector.

Events of the server's life (a session opened or closed, a client refused, a job's new state)
go through `log_event`: the event's name and fields are the JSON line's keys, and the text line
reads `session_open lab=mlp`.
"""

import logging
import sys
from typing import Literal

from pythonjsonlogger.json import JsonFormatter

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

log = logging.getLogger("playground")


def configure_logging(log_format: LogFormat = "text", level: str = "info") -> None:
    """One handler on the root logger, so uvicorn's, TensorFlow's and the app's records all come
    out in one format (uvicorn is then started with `log_config=None`)."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log_format must be one of {LOG_FORMATS}. Received: {log_format!r}")
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "{asctime}{levelname}{name}{message}",
                style="{",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def log_event(event: str, level: int = logging.INFO, **fields: object) -> None:
    """Logs one event: `event` and `fields` are keys of a JSON line, `k=v` pairs of a text one."""
    text = " ".join([event, *(f"{k}={v}" for k, v in fields.items())])
    log.log(level, text, extra={"event": event, **fields})
