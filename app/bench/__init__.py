"""`playground bench`: each lab's module measures against a real server and returns table rows."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    section: str
    metric: str
    value: str
    target: str = ""
    ok: bool | None = None  # None: informational, no target


def format_table(rows: list[Row]) -> str:
    """Render rows as a fixed-width text table."""
    header = ("section", "metric", "measured", "target", "")
    cells = [header] + [
        (r.section, r.metric, r.value, r.target, "" if r.ok is None else ("ok" if r.ok else "MISS"))
        for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(len(header))).rstrip() for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
