"""`playground bench`: starts the real server, runs every lab's bench (with `--load`: a class's
load and 1,000 sessions' churn instead), prints one table."""

import traceback

from app.bench import BenchContext, Row, format_table
from app.bench.rooms import bench_rooms
from app.bench.server import running_server, wait_until_warm
from app.labs import all_labs


def main(
    quick: bool = False, load: bool = False, clients_procs: int = 2, only: list[str] | None = None
) -> None:
    sections = {lab.slug for lab in all_labs() if lab.bench is not None} | {"rooms"}
    if only is not None and not set(only) <= sections:
        raise SystemExit(f"--only must name benches of {sorted(sections)}. Received: {only}")
    rows: list[Row] = []
    with running_server(quick, clients_procs=clients_procs) as ctx:
        if load:
            from app.bench.churn import bench_churn
            from app.bench.load import bench_load

            wait_until_warm(ctx)
            benches = [("load", bench_load), ("churn", bench_churn)]
        else:
            benches = [(lab.slug, lab.bench) for lab in all_labs() if lab.bench is not None]
            benches.append(("rooms", bench_rooms))  # classroom rooms: not a lab, every live lab's
            benches = [(name, bench) for name, bench in benches if only is None or name in only]
        for name, bench in benches:
            rows += _measured(name, bench, ctx)
    print(format_table(rows))


def _measured(name: str, bench, ctx: BenchContext) -> list[Row]:
    """One bench's rows; one that fails is a failed row, and the others are still measured."""
    try:
        return bench(ctx)
    except Exception as exc:
        traceback.print_exc()
        return [Row(name, "the bench ran to its end", f"failed: {exc!r}"[:200], "ran", False)]
