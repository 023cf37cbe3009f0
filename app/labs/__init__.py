"""The registry of labs. Every module of this package that defines `LAB` is a lab: found, not listed.

`create_app` mounts each lab's router, the one `/ws/{slug}` route serves its live session, the page
route renders `templates/labs/<slug>.html`, `playground bench` runs its bench, and the edge, page and
protocol-mirror tests iterate over the same registry.
"""

import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from types import ModuleType
from typing import Any

from fastapi import APIRouter


@dataclass(frozen=True)
class Lab:
    slug: str
    title: str
    summary: str
    order: int  # its place in the course
    short: str = ""  # its name in the navigation bar, where the title is too long to fit
    router: APIRouter | None = None  # its HTTP endpoints
    session: type | None = None  # its live-session class, served at /ws/{slug}
    protocol: ModuleType | None = None  # its wire contract; static/js/protocol/<slug>.js mirrors it
    bench: Callable[[Any], list] | None = None  # bench(BenchContext) -> rows of `playground bench`
    # warm_up(LiveRuntime): queues one-off work (traces, compiles) on the runtime's compiler pool
    # at start-up, so that no first visitor waits for it.
    warm_up: Callable[[Any], None] | None = None
    # traces() -> how many compiled calls the process holds for it (its per-shape caches)
    traces: Callable[[], int] | None = None
    # The template's <option>s: a field name → (value, label) pairs, derived from `models/`.
    choices: Mapping[str, Sequence[tuple[str, str]]] = field(default_factory=dict)
    ready: bool = True  # False: planned; its page says it is coming


@cache
def all_labs() -> tuple[Lab, ...]:
    """Every lab, in teaching order: the modules of this package."""
    found = [
        importlib.import_module(f"{__name__}.{m.name}").LAB for m in pkgutil.iter_modules(__path__)
    ]
    return tuple(sorted(found, key=lambda lab: lab.order))


def find_lab(slug: str) -> Lab | None:
    return next((lab for lab in all_labs() if lab.slug == slug), None)
