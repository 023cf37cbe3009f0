"""Every limit and path of the server, each a `PLAYGROUND_*` environment variable with a safe default."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from models import xla_budget

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PLAYGROUND_", env_ignore_empty=True, extra="ignore"
    )

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    templates_dir: Path = ROOT / "templates"
    static_dir: Path = ROOT / "static"

    # Hosts the server answers for (TrustedHostMiddleware); "*" answers any, e.g. a classroom LAN IP.
    allowed_hosts: list[str] = ["*"]
    # Origins a WebSocket may come from besides the page's own host (scheme://host:port).
    allowed_origins: list[str] = []
    # Non-browser clients (the benchmark, scripts) send no Origin; browsers always do.
    allow_missing_origin: bool = True

    max_sessions: int = Field(120, ge=1, le=10_000)
    ws_max_message_bytes: int = Field(64 * 1024, ge=1024, le=16 * 1024 * 1024)
    # A socket whose client answers no ping within the timeout is closed and its session reaped
    # (a laptop lid shut, Wi-Fi gone): uvicorn's ws_ping_interval / ws_ping_timeout, in seconds.
    ws_ping_interval: float = Field(20.0, gt=0)
    ws_ping_timeout: float = Field(20.0, gt=0)
    # Token bucket for inbound socket messages: a dragged slider stays far below it.
    message_rate: float = Field(60.0, gt=0)
    message_burst: int = Field(120, ge=1)
    # Frames per second a live session sends at most, in every lab; the stacked trainer ticks at it.
    frame_rate: float = Field(40.0, gt=0, le=240)
    # Sides of the output's decision grid and of each drawn hidden neuron's grid.
    grid_size: int = Field(64, ge=8, le=128)
    neuron_grid_size: int = Field(16, ge=4, le=64)
    # A session playing this long without a message from its page is paused.
    idle_pause_seconds: float = Field(15 * 60, gt=0)
    # Threads that run TensorFlow work, off the event loop, in each of the runners' pools; `serve`
    # gives XLA's compiled calls as many (`app/cli.py`).
    tf_threads: int = Field(2, ge=1, le=64)
    # Sessions trained together in one call; more make several groups, trained in parallel.
    max_group_size: int = Field(64, ge=1, le=1024)
    # Compiled trainers kept (one per padded shape, or exact one at max speed); older ones are
    # dropped so memory stays flat. A class trying depths 0-6 and widths 1-50 reaches 31 padded
    # shapes: with fewer kept, it retraced all the time (a stand-in shape meanwhile, and ~100 KiB
    # TensorFlow keeps of each dropped graph). A plain trace is 3-5 MiB.
    max_traces: int = Field(48, ge=2, le=1000)
    # XLA builds one process makes for the shapes students choose (MLP, RNN): TensorFlow never
    # frees one (5-30 MiB each), so past this many new shapes train on plain traces
    # (`models/xla_budget.py`). Start-up makes 12; the churn bench's 19 shapes at group sizes 1-8
    # make 60 more (~1 GiB).
    max_xla_builds: int = Field(128, ge=0)
    # `serve --workers N`: a worker whose resident memory passes this many MiB is replaced (0:
    # never). Its replacement starts first; then it takes no new connections and exits once its
    # open sockets have closed, or after `recycle_drain_seconds` (closing them with 1001: pages
    # reconnect to another worker). TensorFlow keeps some memory of every graph it traced
    # (tensorflow#124972), which only a new process returns.
    recycle_rss_mib: int = Field(0, ge=0)
    recycle_drain_seconds: float = Field(600.0, ge=0)
    # Start new architectures on a plain trace and swap in the XLA-compiled step once it is built.
    use_xla: bool = True
    # Queue every lab's traces and compiles at start-up so a class never waits for them; off, each
    # is built on first use (an app started for a few requests, e.g. a test's, then stops at once).
    warm_up: bool = True

    # A JSON body larger than this is refused unread (413); a lab whose bodies are larger sets its
    # own cap on its router (`StrictJSONRoute.capped`).
    max_json_bytes: int = Field(16 * 1024, ge=1024)
    max_upload_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(4096 * 4096, ge=1)
    max_image_side: int = Field(8192, ge=1)

    # The dog-photo lab: EfficientNet-Lite0 is built once and kept here as a .keras file.
    cache_dir: Path = ROOT / ".cache"
    # Another .keras ImageNet classifier to use instead (RGB 0–255 in, 1000 probabilities out).
    classifier: Path | None = None
    # Classify requests waiting for the model run together, at most this many per call; more
    # than `classifier_queue` waiting are refused (503, Retry-After).
    classifier_batch: int = Field(8, ge=1, le=64)
    classifier_queue: int = Field(32, ge=1, le=1024)

    # Long work (CNN training) runs as jobs (app/jobs/): this many at once, in worker threads the
    # app's lifespan owns; at most `job_queue` waiting, `jobs_per_user` queued or running per
    # user (one of them running), `jobs_kept` remembered; a finished job expires after
    # `job_expire_seconds`.
    job_workers: int = Field(1, ge=1, le=64)
    job_queue: int = Field(32, ge=1, le=10_000)
    jobs_per_user: int = Field(3, ge=1, le=100)
    jobs_kept: int = Field(64, ge=1, le=100_000)
    job_expire_seconds: float = Field(3600.0, gt=0)
    # The CNN lab's limits: classes and photos per class of a data set, epochs, image side (a
    # model from scratch; transfer learning takes 224), data sets kept (least recently used out,
    # also past a total of bytes).
    cnn_max_classes: int = Field(10, ge=2, le=1000)
    cnn_max_photos_per_class: int = Field(100, ge=2, le=100_000)
    cnn_max_epochs: int = Field(50, ge=1, le=10_000)
    cnn_max_image_size: int = Field(128, ge=16, le=512)
    cnn_max_datasets: int = Field(16, ge=1, le=10_000)
    cnn_datasets_max_bytes: int = Field(1024 * 1024 * 1024, ge=1024 * 1024)
    # Several server processes share rooms (pub/sub) and run CNN jobs (a queue) through this Redis,
    # e.g. redis://127.0.0.1:6379/0; unset, everything stays in this process.
    redis_url: str | None = None
    # Classroom rooms (app/rooms/): a room whose instructor's session is gone closes after
    # `room_idle_seconds`; each client address may try `room_joins_per_minute` joins (a burst of
    # `room_join_burst`), so codes cannot be guessed by trying them.
    room_idle_seconds: float = Field(300.0, gt=0, le=24 * 3600)
    room_joins_per_minute: float = Field(30.0, gt=0)
    room_join_burst: int = Field(20, ge=1)
    # A data set folder on the server in the Stanford Dogs layout (Images/n02085620-Chihuahua/).
    datasets_dir: Path | None = None

    def may_build_xla(self) -> bool:
        """XLA is on and this process may still make a build (`max_xla_builds`)."""
        return self.use_xla and xla_budget.left(self.max_xla_builds)


@lru_cache
def get_settings() -> Settings:
    return Settings()
