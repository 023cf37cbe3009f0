"""`playground bench`: starts the real server, runs every lab's bench (with `--load`: a class's
load and 1,000 sessions' churn instead), prints one table."""

from app.bench import Row, format_table
from app.bench.rooms import bench_rooms
from app.bench.server import running_server, wait_until_warm
from app.labs import all_labs


def main(quick: bool = False, load: bool = False, clients_procs: int = 2) -> None:
    rows: list[Row] = []
    with running_server(quick, clients_procs=clients_procs) as ctx:
        if load:
            from app.bench.churn import bench_churn
            from app.bench.load import bench_load

            wait_until_warm(ctx)
            rows += bench_load(ctx)
            rows += bench_churn(ctx)
        else:
            for lab in all_labs():
                if lab.bench is not None:
                    rows += lab.bench(ctx)
            rows += bench_rooms(ctx)  # classroom rooms: not a lab, every live lab's
    print(format_table(rows))
