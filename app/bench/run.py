"""`playground bench`: starts the real server, runs every lab's bench, prints one table."""

from app.bench import Row, format_table
from app.bench.server import running_server
from app.labs import all_labs


def main(quick: bool = False) -> None:
    rows: list[Row] = []
    with running_server(quick) as ctx:
        for lab in all_labs():
            if lab.bench is not None:
                rows += lab.bench(ctx)
    print(format_table(rows))
