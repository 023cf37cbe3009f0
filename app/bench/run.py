"""`playground bench`: starts the real server, runs every lab's benchmark, prints one table."""

import importlib

from app.bench import Row, format_table
from app.bench.server import running_server


def main(quick: bool = False) -> None:
    from app.bench import mlp

    rows: list[Row] = []
    with running_server() as (base, proc, started):
        rows += mlp.run(base, proc.pid, started, quick)
        for name in ("convolution", "descent"):
            try:
                module = importlib.import_module(f"app.bench.{name}")
            except ModuleNotFoundError:
                continue
            rows += module.run(base)
    print(format_table(rows))
