"""The server's Prometheus metrics (`GET /metrics`): the metric objects, and the hooks that move them.

Every metric lives in this process's registry (`REGISTRY`): one server process, one set of counts.
The places where events happen (the socket edge, the jobs, the HTTP middleware below) call the
small functions here, so metric names and labels are written once.
"""

import logging
import time
from collections.abc import Callable, Mapping

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.types import Message, Receive, Scope, Send

from app.http_middleware import HTTPMiddleware
from app.logging_setup import log_event
from models import xla_budget

disable_created_metrics()  # no `_created` series beside each counter: nothing here reads them
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)  # CPU seconds, resident memory, open files
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

# Why a client was refused or cut off. Socket reasons: `bad_origin` (handshake refused, 403),
# `too_big` (closed 1009), `rate_limited` (closed 1008), `server_full` (closed 1013),
# `bad_message` (answered with an `error`); HTTP: `http_413`, `http_422`.
REJECT_REASONS = (
    "bad_origin",
    "too_big",
    "rate_limited",
    "server_full",
    "bad_message",
    "http_413",
    "http_422",
)
LIVE_JOB_STATES = ("queued", "running")
FINISHED_JOB_STATES = ("done", "failed", "stopped")
# Seconds: a frame is due every 25 ms at 40 frames/s; the target is p95 ≤ 50 ms.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

SESSIONS_OPEN = Gauge(
    "playground_sessions_open", "Live-lab sessions open now.", ["lab"], registry=REGISTRY
)
FRAMES_SENT = Counter(
    "playground_frames_sent",
    "Frames sent to live-lab sockets; rate() gives frames per second.",
    ["lab"],
    registry=REGISTRY,
)
CONTROL_LATENCY = Histogram(
    "playground_control_latency_seconds",
    "Seconds from a client message that calls for a frame (config, play, step, reset) arriving "
    "to the next frame sent to that client: how long a slider's effect takes to show.",
    ["lab"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "playground_http_request_duration_seconds",
    "Seconds from an HTTP request's arrival to the end of its response, by route template.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
TRACES = Gauge(
    "playground_traces",
    "Compiled calls a lab holds in its per-shape caches (traces and XLA builds), by lab: bounded "
    "by the server's max_traces, however many sessions come and go.",
    ["lab"],
    registry=REGISTRY,
)
XLA_BUILDS = Gauge(
    "playground_xla_builds",
    "XLA builds this process has made for the shapes students choose; TensorFlow frees none, so "
    "past max_xla_builds new shapes run their plain traces.",
    registry=REGISTRY,
)
XLA_BUILDS.set_function(xla_budget.made)
JOBS = Gauge(
    "playground_jobs", "Jobs queued or running now, by state.", ["state"], registry=REGISTRY
)
JOBS_FINISHED = Counter(
    "playground_jobs_finished", "Jobs ended, by outcome.", ["state"], registry=REGISTRY
)
REJECTS = Counter(
    "playground_rejects",
    "Clients refused or cut off, by reason: " + ", ".join(REJECT_REASONS) + ".",
    ["reason"],
    registry=REGISTRY,
)
for _reason in REJECT_REASONS:  # every reason shows, at 0, before it first happens
    REJECTS.labels(_reason)
for _state in LIVE_JOB_STATES:
    JOBS.labels(_state)
for _state in FINISHED_JOB_STATES:
    JOBS_FINISHED.labels(_state)


# A student's typo, not a client misbehaving: counted, but logged only at debug level.
MISTAKES = ("bad_message", "http_422")


def reject(reason: str, **fields) -> None:
    """Counts and logs one refusal; `reason` is one of `REJECT_REASONS`."""
    if reason not in REJECT_REASONS:
        raise ValueError(f"reason must be one of {REJECT_REASONS}. Received: reason={reason!r}")
    REJECTS.labels(reason).inc()
    level = logging.DEBUG if reason in MISTAKES else logging.INFO
    log_event("reject", level, reason=reason, **fields)


def session_opened(lab: str) -> None:
    SESSIONS_OPEN.labels(lab).inc()
    log_event("session_open", lab=lab)


def session_closed(lab: str, seconds: float) -> None:
    SESSIONS_OPEN.labels(lab).dec()
    log_event("session_close", lab=lab, seconds=round(seconds, 3))


class _SharedJobs:
    """The jobs of the shared queue (RQ on Redis): workers in other processes run them, so they
    are counted in Redis and read at each scrape, the same on every server. `counts()` gives
    (queued and running by state, ended by outcome), or None while Redis is away."""

    counts: Callable[[], tuple[Mapping[str, int], Mapping[str, int]] | None] | None = None

    def collect(self):
        found = self.counts() if self.counts is not None else None
        if found is None:
            return
        live, ended = found
        gauge = GaugeMetricFamily(
            "playground_shared_jobs",
            "Jobs of the shared (Redis) queue queued or running now, by state.",
            labels=["state"],
        )
        counter = CounterMetricFamily(
            "playground_shared_jobs_finished",
            "Jobs of the shared (Redis) queue ended, by outcome.",
            labels=["state"],
        )
        by_family = ((gauge, LIVE_JOB_STATES, live), (counter, FINISHED_JOB_STATES, ended))
        for family, states, counts in by_family:
            for state in states:
                family.add_metric([state], counts.get(state, 0))
            yield family


_SHARED_JOBS = _SharedJobs()
REGISTRY.register(_SHARED_JOBS)


def count_shared_jobs(counts) -> None:
    """Reports the shared queue's jobs with `counts` (`_SharedJobs`); None: no shared queue."""
    _SHARED_JOBS.counts = counts


def count_traces(lab: str, held: Callable[[], int]) -> None:
    """Reports `held()`, the compiled calls `lab` holds now, at each scrape."""
    TRACES.labels(lab).set_function(held)


def job_changed(job_id: str, old: str | None, new: str) -> None:
    """A job went from `old` (None: it was just submitted) to `new`."""
    if old in LIVE_JOB_STATES:
        JOBS.labels(old).dec()
    if new in LIVE_JOB_STATES:
        JOBS.labels(new).inc()
    else:
        JOBS_FINISHED.labels(new).inc()
    log_event("job_state", job=job_id, old=old, state=new)


class FrameLatency:
    """One socket's control latency: the earliest message still waiting for a frame, by lab."""

    def __init__(self, lab: str):
        self.lab = lab
        self.since: float | None = None

    def message_arrived(self, at: float) -> None:
        if self.since is None:
            self.since = at

    def frame_sent(self) -> None:
        FRAMES_SENT.labels(self.lab).inc()
        if self.since is not None:
            CONTROL_LATENCY.labels(self.lab).observe(time.perf_counter() - self.since)
            self.since = None


class HTTPMetrics(HTTPMiddleware):
    """ASGI middleware: each HTTP request's latency by route template (`/api/cnn/jobs/{job_id}`,
    never the raw path, so the label set stays bounded), and 413/422 answers as rejects."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None)
            mount = scope.get("root_path") if "endpoint" in scope else None  # /static
            template = route or mount or "unmatched"
            HTTP_LATENCY.labels(scope["method"], template).observe(time.perf_counter() - started)
            if status in (413, 422):
                reject(f"http_{status}", path=template)


router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response)
def metrics() -> Response:
    """Prometheus' text format: sessions open and frames sent by lab, control and HTTP latency
    histograms, jobs by state (this process's, and the shared queue's with Redis), rejects by
    reason, and the process's CPU and memory."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
