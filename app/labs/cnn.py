"""CNN training: train a small CNN from scratch, or a softmax on EfficientNet-Lite0, on your photos.

Data sets are made by uploading photos class by class, from a folder on the server in the Stanford
Dogs layout (`PLAYGROUND_DATASETS_DIR`), or drawn (`shapes`, `colours`: built in, nothing to
upload). Photos are decoded safely (`models/images.py`) and kept in memory as 224×224 squares.

Training is a job (`app/jobs/`): `app.jobs.cnn.train_job` runs in the app's job workers; its
reports reach the page through `GET /api/cnn/jobs/{id}` and, live, the socket `/ws/cnn/{id}`.
Every message the socket sends is built from a pydantic model: `StatusMessage` and `ErrorMessage`
here, the training's own (`StartMessage`, `BatchMessage`, `EpochMessage`, `PicturesMessage`) in
`app/jobs/cnn.py`.
"""

import asyncio
import contextlib
import json
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from functools import cache
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import (
    APIRouter,
    Depends,
    HTTPException,
    Query,
    Request,
    Response,
    WebSocket,
    WebSocketDisconnect,
    status,
)
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from starlette.concurrency import run_in_threadpool

from app.bench.cnn import bench
from app.jobs import JobRefused, Jobs, JobStatus
from app.jobs.cnn import (
    MAX_STEP_POINTS,
    MISTAKE_SIDE,
    EpochPoint,
    Evaluation,
    FedImage,
    Metrics,
    Pictures,
    StepPoint,
    TrainingJob,
    TrainingResult,
    photo_url,
    train_job,
)
from app.labs import Lab
from app.live.channel import incoming
from app.live.guard import BadMessage, parse_json, refuse_foreign_origin
from app.metrics import reject
from app.request_limits import JSON_ERRORS, StrictJSONRoute, unprocessable
from app.routes.uploads import add_photo_route, decode_photo
from app.settings import Settings
from models import cnn
from models.classifier import Classifier
from models.efficientnet import ModelUnavailable

STORE_SIDE = cnn.PRETRAINED_SIZE  # photos are kept as squares EfficientNet-Lite0 takes as they are
BUILT_IN_PHOTOS = 30  # per class, in the generated data sets `shapes` and `colours`
SAMPLES = 3  # thumbnails per class in a data set's description
THUMBNAIL_SIDE = 64
MODELS_KEPT = 4  # trained models rebuilt for classify, least recently used out
CLIENT_COOKIE = "playground_client"
CLIENT_HEADER = "X-Client-Id"
CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
CLOSE_NO_SUCH_JOB = 4404
LABEL_PATTERN = r"^\w[\w .'-]{0,39}$"
LABELS = {
    "model": {
        "scratch": "a small CNN from scratch",
        "transfer": "transfer learning: a softmax on frozen EfficientNet-Lite0",
        "finetune": "fine-tuning: transfer learning and the top block",
    },
    "generated": {"shapes": "shapes (drawn)", "colours": "colours (drawn)"},
    "augment": {
        "flip": "flip left–right",
        "crop": "random crop",
        "rotation": "rotation",
        "brightness": "brightness",
        "contrast": "contrast",
    },
}
AUGMENT_LIMITS = {"crop": 0.5, "rotation": 0.5, "brightness": 1.0, "contrast": 1.0}


router = APIRouter(tags=["cnn"], route_class=StrictJSONRoute)


# --- data sets ---------------------------------------------------------------------------------


@dataclass(eq=False)
class PhotoSet:
    """Photos by class, uint8 `[224, 224, 3]` each; a built-in set never changes."""

    id: str
    source: Literal["upload", "generated", "folder"]
    built_in: bool = False
    nbytes: int = 0
    _classes: dict[str, list[np.ndarray]] = field(default_factory=dict)
    _stacked: cnn.ImageSet | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def of(cls, dataset_id: str, source, data: cnn.ImageSet, built_in: bool = False):
        photos = cls(dataset_id, source, built_in)
        for image, label in zip(data.images, data.labels, strict=True):
            photos._append(data.class_names[label], image)
        return photos

    def _append(self, label: str, pixels: np.ndarray) -> None:
        self._classes.setdefault(label, []).append(pixels)
        self.nbytes += pixels.nbytes
        self._stacked = None

    def add(self, label: str, pixels: np.ndarray, s: Settings) -> None:
        """Adds a photo to a class, or a 422 naming the limit it would pass."""
        with self._lock:
            taken = self._classes.get(label)
            if taken is None and len(self._classes) >= s.cnn_max_classes:
                raise unprocessable(
                    f"label: the data set has {len(self._classes)} classes, the most allowed "
                    f"(PLAYGROUND_CNN_MAX_CLASSES). Received: label={label!r}",
                    ("query", "label"),
                )
            if taken is not None and len(taken) >= s.cnn_max_photos_per_class:
                raise unprocessable(
                    f"label: class {label!r} has {len(taken)} photos, the most allowed "
                    f"(PLAYGROUND_CNN_MAX_PHOTOS_PER_CLASS). Received: label={label!r}",
                    ("query", "label"),
                )
            self._append(label, pixels)

    def classes(self) -> list[tuple[str, list[np.ndarray]]]:
        """(class, its photos) pairs, as they are now."""
        with self._lock:
            return [(name, list(photos)) for name, photos in self._classes.items()]

    def image_set(self) -> cnn.ImageSet:
        """The photos as one array, made once per version of the set and shared by its jobs."""
        with self._lock:
            if self._stacked is None:
                photos = [p for photos in self._classes.values() for p in photos]
                labels = [i for i, photos in enumerate(self._classes.values()) for _ in photos]
                images = np.stack(photos) if photos else np.zeros((0, STORE_SIDE, STORE_SIDE, 3))
                self._stacked = cnn.ImageSet(
                    images.astype(np.uint8), np.array(labels, np.int32), tuple(self._classes)
                )
            return self._stacked

    def problem(self) -> str | None:
        """Why it cannot be trained on yet, or None."""
        counts = {name: len(photos) for name, photos in self.classes()}
        if len(counts) < 2:
            return f"Training needs at least 2 classes. Received: {len(counts)} classes"
        few = [name for name, count in counts.items() if count < 2]
        if few:
            return (
                f"Every class needs at least 2 photos, one to train on and one to validate. "
                f"Received: too few in {few}"
            )
        return None


@cache
def _generated(kind: str) -> PhotoSet:
    """A built-in drawn data set, made once per process."""
    data = cnn.make_generated(kind, per_class=BUILT_IN_PHOTOS, size=STORE_SIDE)
    return PhotoSet.of(kind, "generated", data, built_in=True)


class PhotoSets:
    """The data sets of one app, by random id: the least recently used go first past the caps."""

    def __init__(self, max_sets: int, max_bytes: int):
        self.max_sets, self.max_bytes = max_sets, max_bytes
        self._sets: OrderedDict[str, PhotoSet] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, photos: PhotoSet) -> PhotoSet:
        with self._lock:
            self._sets[photos.id] = photos
            self._evict(keep=photos)
        return photos

    def get(self, dataset_id: str) -> PhotoSet | None:
        if dataset_id in cnn.GENERATED:
            return _generated(dataset_id)
        with self._lock:
            photos = self._sets.get(dataset_id)
            if photos is not None:
                self._sets.move_to_end(dataset_id)
            return photos

    def add_photo(self, photos: PhotoSet, label: str, pixels: np.ndarray, s: Settings) -> None:
        """Adds a photo to a class of `photos` (a 422 past a limit); older sets may go."""
        photos.add(label, pixels, s)
        with self._lock:
            self._evict(keep=photos)

    def _evict(self, keep: PhotoSet) -> None:
        total = sum(p.nbytes for p in self._sets.values())
        while len(self._sets) > self.max_sets or total > self.max_bytes:
            oldest = next(iter(self._sets.values()))
            if oldest is keep:
                break
            del self._sets[oldest.id]
            total -= oldest.nbytes


_photo_sets_lock = threading.Lock()


def get_photo_sets(request: Request) -> PhotoSets:
    """The app's data sets, made on first use."""
    state = request.app.state
    with _photo_sets_lock:
        if not hasattr(state, "cnn_datasets"):
            s = state.settings
            state.cnn_datasets = PhotoSets(s.cnn_max_datasets, s.cnn_datasets_max_bytes)
        return state.cnn_datasets


PhotoSetsDep = Annotated[PhotoSets, Depends(get_photo_sets)]


RETRY_AFTER_SECONDS = "30"  # a refused job's 503: the queue is full, or Redis away


def get_jobs(request: Request) -> Iterator[Jobs]:
    """The app's job queue; a job it refuses (`JobRefused`: full, too many, its queue away)
    is answered with its status and reason, and a 503 with Retry-After."""
    try:
        yield request.app.state.live.jobs
    except JobRefused as exc:
        headers = {"Retry-After": RETRY_AFTER_SECONDS} if exc.status == 503 else None
        raise HTTPException(exc.status, str(exc), headers=headers) from exc


JobsDep = Annotated[Jobs, Depends(get_jobs)]


def client_id(request: Request, response: Response) -> str:
    """Who is asking: the `X-Client-Id` header, else the `playground_client` cookie, else a new
    id set as that cookie."""
    for given in (request.headers.get(CLIENT_HEADER), request.cookies.get(CLIENT_COOKIE)):
        if given and CLIENT_ID.fullmatch(given):
            return given
    new = uuid.uuid4().hex
    response.set_cookie(CLIENT_COOKIE, new, max_age=365 * 24 * 3600, httponly=True, samesite="lax")
    return new


ClientDep = Annotated[str, Depends(client_id)]


# --- wire models -------------------------------------------------------------------------------


class DatasetRequest(BaseModel):
    """An empty data set to upload photos to (`{}` or no body), a drawn one (`generated`), or
    breeds of the server's Stanford Dogs folder (`breeds`)."""

    model_config = ConfigDict(extra="forbid")

    generated: Literal[*cnn.GENERATED] | None = Field(
        None, description="Draw the photos: `shapes` (the class is the shape) or `colours`."
    )
    classes: list[str] | None = Field(
        None,
        min_length=2,
        description=f"With `generated`: the classes to draw, from `shapes` {list(cnn.SHAPES)} "
        f"or `colours` {list(cnn.HUES)}. Defaults to three.",
    )
    breeds: list[str] | None = Field(
        None, min_length=2, description="Breeds of `GET /api/cnn/catalog`'s `breeds`."
    )
    photos_per_class: int | None = Field(
        None,
        ge=2,
        description=f"With `generated` or `breeds`: defaults to {BUILT_IN_PHOTOS}, or the limit "
        "if lower.",
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="With `generated`: the drawing's seed.")

    @model_validator(mode="after")
    def _one_source(self) -> "DatasetRequest":
        if self.generated is not None and self.breeds is not None:
            raise ValueError(
                "Give generated or breeds, not both. Received: "
                f"generated={self.generated!r}, breeds={self.breeds}"
            )
        if self.classes is not None and self.generated is None:
            raise ValueError(f"classes goes with generated. Received: classes={self.classes}")
        return self


class DatasetCreated(BaseModel):
    id: str


class ClassOut(BaseModel):
    name: str
    photos: int
    samples: list[str] = Field(description=f"Up to {SAMPLES} thumbnails, JPEG data URLs.")


class DatasetLimits(BaseModel):
    max_classes: int
    max_photos_per_class: int


class DatasetOut(BaseModel):
    id: str
    source: Literal["upload", "generated", "folder"]
    built_in: bool = Field(description="A drawn set every user shares: it cannot change.")
    classes: list[ClassOut]
    photos: int
    problem: str | None = Field(description="Why it cannot be trained on yet; null when it can.")
    limits: DatasetLimits


class ConvBlockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filters: int = Field(16, ge=1, le=cnn.MAX_FILTERS)
    kernel_size: int = Field(3, ge=1, le=cnn.MAX_KERNEL_SIZE)


def _strength(name: str, description: str) -> Any:
    """An augmentation's strength: from 0 (off) to its `AUGMENT_LIMITS`."""
    return Field(0.0, ge=0, le=AUGMENT_LIMITS[name], allow_inf_nan=False, description=description)


class AugmentIn(BaseModel):
    """Random changes to the training photos; 0 or false turns one off."""

    model_config = ConfigDict(extra="forbid")

    flip: bool = Field(False, description="Mirror left–right at random.")
    crop: float = _strength("crop", "Cut a random window of (1 - crop) of each side, resized back.")
    rotation: float = _strength(
        "rotation", "Turn by up to ± this fraction of a full turn (0.05: ±18°)."
    )
    brightness: float = _strength("brightness", "Add up to ± this fraction of the 0–255 range.")
    contrast: float = _strength(
        "contrast", "Scale the contrast by a factor in [1 - contrast, 1 + contrast]."
    )

    def to_model(self) -> cnn.Augmentation:
        return cnn.Augmentation(**self.model_dump())


class JobRequest(BaseModel):
    """What to train. Every field but `dataset` and `model` has a default."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(description="A data set's id, or a built-in one: `shapes`, `colours`.")
    model: Literal[*cnn.MODELS]
    epochs: int = Field(10, ge=1, description="At most PLAYGROUND_CNN_MAX_EPOCHS (50).")
    learning_rate: float | None = Field(
        None,
        gt=0,
        le=10,
        allow_inf_nan=False,
        description=f"Adam's; null takes the model's default {cnn.DEFAULT_LEARNING_RATES}.",
    )
    batch_size: int = Field(32, ge=1, le=256)
    image_size: int | None = Field(
        None,
        ge=cnn.MIN_IMAGE_SIZE,
        description=f"scratch: the side photos are resized to (default {cnn.DEFAULT_IMAGE_SIZE}, "
        f"at most PLAYGROUND_CNN_MAX_IMAGE_SIZE); transfer and finetune always take "
        f"{cnn.PRETRAINED_SIZE}.",
    )
    validation_split: float = Field(0.2, ge=0.05, le=0.5, allow_inf_nan=False)
    blocks: list[ConvBlockIn] = Field(
        default_factory=lambda: [ConvBlockIn(**vars(b)) for b in cnn.DEFAULT_BLOCKS],
        min_length=1,
        max_length=cnn.MAX_BLOCKS,
        description="scratch: conv → ReLU → max-pool blocks.",
    )
    augment: AugmentIn = Field(default_factory=AugmentIn)
    seed: int = Field(0, ge=0, le=2**31 - 1, description="The split's and shuffles' seed.")

    def to_config(self) -> cnn.TrainConfig:
        # The numbers and names go as they are; the blocks and the augmentation become models'.
        plain = self.model_dump(exclude={"dataset", "blocks", "augment"})
        return cnn.TrainConfig(
            **plain,
            blocks=tuple(cnn.ConvBlock(b.filters, b.kernel_size) for b in self.blocks),
            augment=self.augment.to_model(),
        )


class JobCreated(BaseModel):
    id: str
    state: str
    queue_position: int | None


class JobSummary(BaseModel):
    id: str
    state: Literal["queued", "running", "done", "failed", "stopped"]
    model: str
    dataset: str
    epoch: int = 0
    epochs: int
    progress: float = 0.0
    created_at: float


class JobOut(BaseModel):
    """A training job: `GET /api/cnn/jobs/{id}`, and the socket's `status` message."""

    id: str
    state: Literal["queued", "running", "done", "failed", "stopped"]
    paused: bool
    stopping: bool = Field(description="A stop was asked; the job ends after its current step.")
    queue_position: int | None = Field(description="1: next to start. null unless queued.")
    error: str | None = Field(description="Why it failed (diverged, a limit, a missing model).")
    model: str
    dataset: str
    config: JobRequest = Field(description="As trained: defaults filled in.")
    classes: list[str]
    train_images: int | None = None
    val_images: int | None = None
    batches: int | None = Field(None, description="Steps per epoch.")
    epochs: int
    epoch: int = Field(0, description="Epochs finished.")
    batch: int = Field(0, description="Batches done in the current epoch.")
    step: int = Field(0, description="Batches done in all.")
    progress: float = Field(0.0, description="Share of the planned steps done, 0 to 1.")
    metrics: Metrics = Field(default_factory=Metrics)
    images_per_second: float | None = None
    eta_seconds: float | None = None
    parameters: int | None = None
    trainable_parameters: int | None = None
    cached_features: bool | None = Field(
        None, description="transfer/finetune: features computed once per photo (no augmentation)."
    )
    history: list[EpochPoint] = Field(default_factory=list)
    steps: list[StepPoint] = Field(
        default_factory=list, description=f"Per-batch points, at most {MAX_STEP_POINTS}."
    )
    fed: list[FedImage] = Field(
        default_factory=list, description="Training photos as the network is fed them."
    )
    pictures: Pictures | None = None
    evaluation: Evaluation | None = None
    has_model: bool = Field(description="model.keras, train.py and classify are available.")
    created_at: float
    started_at: float | None
    finished_at: float | None
    expires_at: float | None = Field(description="Unix time it will be forgotten.")


class StatusMessage(JobOut):
    type: Literal["status"] = "status"


class ErrorMessage(BaseModel):
    type: Literal["error"] = "error"
    message: str


class Control(BaseModel):
    """What a page may send on the socket."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["pause", "resume", "stop"]


class Guess(BaseModel):
    label: str
    probability: float


class ClassifyOut(BaseModel):
    top: list[Guess] = Field(description="The classes, most probable first (at most 5).")
    compute_ms: float


class AugmentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str
    augment: AugmentIn = Field(default_factory=AugmentIn)
    image_size: int = Field(cnn.DEFAULT_IMAGE_SIZE, ge=cnn.MIN_IMAGE_SIZE, le=cnn.PRETRAINED_SIZE)
    count: int = Field(8, ge=1, le=32)
    seed: int = Field(0, ge=0, le=2**31 - 1)


class AugmentOut(BaseModel):
    images: list[FedImage] = Field(description="The data set's photos as the network is fed them.")


class ModelChoice(BaseModel):
    value: str
    label: str
    image_size: int | None = Field(description="Fixed input side; null: image_size chooses.")
    learning_rate: float


class AugmentChoice(BaseModel):
    name: str
    label: str
    max: float | None = Field(description="null: on/off (flip).")


class GeneratedChoice(BaseModel):
    id: str
    label: str
    classes: list[str] = Field(description="The built-in set's classes.")
    choices: list[str] = Field(description="The classes `POST /api/cnn/datasets` may draw.")


class BreedOut(BaseModel):
    name: str
    photos: int


class CatalogLimits(BaseModel):
    max_classes: int
    max_photos_per_class: int
    max_epochs: int
    image_size: list[int] = Field(description="[min, max] for scratch.")
    batch_size: list[int]
    validation_split: list[float]
    learning_rate: list[float]
    max_blocks: int
    max_filters: int
    max_kernel_size: int


class CatalogOut(BaseModel):
    models: list[ModelChoice]
    augmentations: list[AugmentChoice]
    generated: list[GeneratedChoice]
    breeds: list[BreedOut] = Field(description="PLAYGROUND_DATASETS_DIR's classes; [] without it.")
    limits: CatalogLimits
    defaults: dict[str, Any] = Field(description="POST /api/cnn/jobs's defaults.")


# --- helpers of the endpoints --------------------------------------------------------------------


def _photo_set(sets: PhotoSets, dataset_id: str) -> PhotoSet:
    photos = sets.get(dataset_id)
    if photos is None:
        raise HTTPException(
            404,
            "No data set has this id: data sets are kept while there is room (the most recently "
            "used first). Create it again.",
        )
    return photos


def _describe(photos: PhotoSet, s: Settings) -> DatasetOut:
    classes = [
        ClassOut(
            name=name,
            photos=len(images),
            samples=[photo_url(image, THUMBNAIL_SIDE) for image in images[:SAMPLES]],
        )
        for name, images in photos.classes()
    ]
    return DatasetOut(
        id=photos.id,
        source=photos.source,
        built_in=photos.built_in,
        classes=classes,
        photos=sum(c.photos for c in classes),
        problem=photos.problem(),
        limits=DatasetLimits(
            max_classes=s.cnn_max_classes, max_photos_per_class=s.cnn_max_photos_per_class
        ),
    )


async def _read_photo(request: Request) -> np.ndarray:
    """The uploaded photo, decoded safely and made a 224×224 square."""
    decoded = await decode_photo(request)
    return await run_in_threadpool(cnn.square_photo, decoded.pixels, STORE_SIDE)


def _job_out(s: JobStatus) -> JobOut:
    """The status's own fields, then what the job reported (`has_model` once it has one)."""
    own = {f.name: getattr(s, f.name) for f in fields(s) if f.name != "progress"}
    return JobOut(**own, **{"has_model": False, **s.progress})


def _status(jobs: Jobs, job_id: str) -> JobStatus:
    found = jobs.status(job_id)
    if found is None:
        raise HTTPException(
            404, "No job has this id: finished jobs are kept for a while only. Train it again."
        )
    return found


def _result(jobs: Jobs, job_id: str) -> TrainingResult:
    """The finished job's result, or 409 saying why there is none (yet)."""
    found = _status(jobs, job_id)
    result = jobs.result(job_id)
    if result is not None:
        return result
    if found.state in ("queued", "running"):
        why = f"it is {found.state}: wait for it to end, or stop it to keep what it learned"
    elif found.state == "failed":
        why = f"it failed: {found.error}"
    else:
        why = "it was stopped before it started"
    raise HTTPException(409, f"The job has no trained model: {why}.")


_models: OrderedDict[str, Classifier] = OrderedDict()
_models_lock = threading.Lock()


def _trained_model(job_id: str, result: TrainingResult, cache_dir) -> Classifier:
    """The job's trained model, rebuilt from its weights once and kept for a while."""
    with _models_lock:
        if job_id in _models:
            _models.move_to_end(job_id)
            return _models[job_id]
    model = cnn.rebuild(result.config, len(result.class_names), result.weights, cache_dir)
    classifier = Classifier(model)
    with _models_lock:
        _models[job_id] = classifier
        while len(_models) > MODELS_KEPT:
            _models.popitem(last=False)
    return classifier


def _cache_dir(settings: Settings) -> str:
    return str(settings.cache_dir)


# --- endpoints ---------------------------------------------------------------------------------

_PHOTO_ERRORS = {
    413: {"description": "The file is over the byte cap, or the image over the pixel cap."},
    415: {"description": "Not a JPEG, PNG, GIF, BMP or WebP image by content."},
    422: {"description": "Empty or damaged image, a form without `file`, or a limit passed."},
}
_NO_DATASET = {404: {"description": "Unknown or forgotten data set."}}
_NO_JOB = {
    404: {"description": "Unknown or expired job."},
    503: {"description": "Its job queue (Redis) cannot be reached now (Retry-After)."},
}
_NO_MODEL = {409: {"description": "The job has no trained model (yet); `detail` says why."}}


@router.get("/api/cnn/catalog")
def catalog(request: Request) -> CatalogOut:
    """
    What the lab offers: models, augmentations, drawn data sets, the server folder's breeds,
    every limit and the training defaults.
    """
    s: Settings = request.app.state.settings
    breeds = cnn.list_breeds(s.datasets_dir) if s.datasets_dir else ()
    return CatalogOut(
        models=[
            ModelChoice(
                value=m,
                label=LABELS["model"][m],
                image_size=None if m == "scratch" else cnn.PRETRAINED_SIZE,
                learning_rate=cnn.DEFAULT_LEARNING_RATES[m],
            )
            for m in cnn.MODELS
        ],
        augmentations=[
            AugmentChoice(name=a, label=LABELS["augment"][a], max=AUGMENT_LIMITS.get(a))
            for a in cnn.AUGMENTATIONS
        ],
        generated=[
            GeneratedChoice(
                id=kind,
                label=LABELS["generated"][kind],
                classes=list(classes),
                choices=list(cnn.SHAPES if kind == "shapes" else cnn.HUES),
            )
            for kind, classes in cnn.GENERATED.items()
        ],
        breeds=[BreedOut(name=b.name, photos=b.photos) for b in breeds],
        limits=CatalogLimits(
            max_classes=s.cnn_max_classes,
            max_photos_per_class=s.cnn_max_photos_per_class,
            max_epochs=s.cnn_max_epochs,
            image_size=[cnn.MIN_IMAGE_SIZE, s.cnn_max_image_size],
            batch_size=[1, 256],
            validation_split=[0.05, 0.5],
            learning_rate=[0, 10],
            max_blocks=cnn.MAX_BLOCKS,
            max_filters=cnn.MAX_FILTERS,
            max_kernel_size=cnn.MAX_KERNEL_SIZE,
        ),
        defaults=JobRequest(dataset="shapes", model="scratch").model_dump(
            exclude={"dataset", "model"}
        ),
    )


@router.post(
    "/api/cnn/datasets",
    status_code=201,
    responses={**JSON_ERRORS, 404: {"description": "No data set folder on this server"}},
)
async def create_dataset(
    request: Request, sets: PhotoSetsDep, body: DatasetRequest | None = None
) -> DatasetCreated:
    """
    A new data set: empty, to upload photos to class by class (no body or `{}`); drawn
    (`{"generated": "shapes"}`); or breeds of the server's Stanford Dogs folder
    (`{"breeds": ["Chihuahua", "Pug"], "photos_per_class": 50}`).
    """
    s: Settings = request.app.state.settings
    body = body or DatasetRequest()
    per_class = body.photos_per_class or min(BUILT_IN_PHOTOS, s.cnn_max_photos_per_class)
    if per_class > s.cnn_max_photos_per_class:
        raise unprocessable(
            f"photos_per_class must be at most {s.cnn_max_photos_per_class} "
            f"(PLAYGROUND_CNN_MAX_PHOTOS_PER_CLASS). Received: "
            f"photos_per_class={body.photos_per_class}",
            ("body", "photos_per_class"),
        )
    chosen = body.classes or body.breeds or ()
    if len(chosen) > s.cnn_max_classes:
        name = "classes" if body.classes else "breeds"
        raise unprocessable(
            f"{name} may name at most {s.cnn_max_classes} classes (PLAYGROUND_CNN_MAX_CLASSES). "
            f"Received: {len(chosen)}",
            ("body", name),
        )
    dataset_id = uuid.uuid4().hex
    if body.generated is not None:
        try:
            data = await run_in_threadpool(
                cnn.make_generated,
                body.generated,
                tuple(body.classes) if body.classes else None,
                per_class,
                STORE_SIDE,
                body.seed,
            )
        except ValueError as exc:
            raise unprocessable(str(exc), ("body", "classes")) from exc
        photos = PhotoSet.of(dataset_id, "generated", data)
    elif body.breeds is not None:
        data = await run_in_threadpool(_load_breeds, s, body.breeds, per_class)
        photos = PhotoSet.of(dataset_id, "folder", data)
    else:
        photos = PhotoSet(dataset_id, "upload")
    return DatasetCreated(id=sets.add(photos).id)


def _load_breeds(s: Settings, names: list[str], per_class: int) -> cnn.ImageSet:
    if s.datasets_dir is None:
        raise HTTPException(
            404, "This server has no data set folder: set PLAYGROUND_DATASETS_DIR to use breeds."
        )
    breeds = {b.name: b for b in cnn.list_breeds(s.datasets_dir)}
    unknown = [n for n in names if n not in breeds]
    if unknown or len(set(names)) != len(names):
        raise unprocessable(
            f"breeds must be different names of GET /api/cnn/catalog's breeds, e.g. "
            f"{sorted(breeds)[:3]}. Received: unknown {unknown}"
            if unknown
            else f"breeds must be different. Received: breeds={names}",
            ("body", "breeds"),
        )
    try:
        return cnn.load_breeds(
            [breeds[n] for n in names],
            per_class,
            STORE_SIDE,
            max_bytes=s.max_upload_bytes,
            max_pixels=s.max_image_pixels,
            max_side=s.max_image_side,
        )
    except ValueError as exc:
        raise unprocessable(str(exc), ("body", "breeds")) from exc


@router.get("/api/cnn/datasets/{dataset_id}", responses=_NO_DATASET)
def get_dataset(dataset_id: str, request: Request, sets: PhotoSetsDep) -> DatasetOut:
    """
    A data set's classes, how many photos each holds (with a few thumbnails), whether it can be
    trained on and the limits. `shapes` and `colours` are the built-in drawn sets.
    """
    return _describe(_photo_set(sets, dataset_id), request.app.state.settings)


async def add_photo(
    dataset_id: str,
    request: Request,
    sets: PhotoSetsDep,
    label: Annotated[
        str,
        Query(
            pattern=LABEL_PATTERN,
            description="The class: 1 to 40 letters, digits, spaces, `_ . ' -`; a new name "
            "starts a class.",
        ),
    ],
) -> DatasetOut:
    """
    Add a photo to a class of a data set: it is decoded safely, cropped to its central square and
    kept as 224×224. A class past the limits is refused with a 422 naming the limit.
    """
    photos = _photo_set(sets, dataset_id)
    if photos.built_in:
        raise HTTPException(
            409,
            f"{dataset_id} is a built-in data set and cannot change: create your own with "
            "POST /api/cnn/datasets.",
        )
    pixels = await _read_photo(request)
    settings = request.app.state.settings
    sets.add_photo(photos, label.strip(), pixels, settings)
    return await run_in_threadpool(_describe, photos, settings)


add_photo_route(
    router,
    "/api/cnn/datasets/{dataset_id}/images",
    add_photo,
    status_code=201,
    responses={
        **_PHOTO_ERRORS,
        **_NO_DATASET,
        409: {"description": "A built-in data set cannot change."},
    },
)


@router.post("/api/cnn/augment", responses={**JSON_ERRORS, **_NO_DATASET})
def augment(body: AugmentRequest, sets: PhotoSetsDep) -> AugmentOut:
    """
    A data set's first photos, class after class, as the network is fed them with this
    augmentation (random: the same seed gives the same images).
    """
    data = _photo_set(sets, body.dataset).image_set()
    rank = np.zeros(len(data.labels), int)  # each photo's place within its class
    for label in np.unique(data.labels):
        rank[data.labels == label] = np.arange((data.labels == label).sum())
    chosen = np.lexsort((data.labels, rank))[: body.count]
    images = cnn.augment_images(
        data.images[chosen], body.augment.to_model(), body.image_size, seed=body.seed
    )
    return AugmentOut(
        images=[
            FedImage(label=data.class_names[data.labels[i]], image=photo_url(image, MISTAKE_SIDE))
            for i, image in zip(chosen, images, strict=True)
        ]
    )


@router.post(
    "/api/cnn/jobs",
    status_code=201,
    responses={
        **JSON_ERRORS,
        429: {"description": "You have as many jobs queued or running as one user may."},
        503: {"description": "The queue is full, or the server is stopping (Retry-After)."},
    },
)
def create_job(
    body: JobRequest, request: Request, response: Response, jobs: JobsDep, sets: PhotoSetsDep,
    owner: ClientDep,
) -> JobCreated:  # fmt: skip
    """
    Train a model on a data set, as a job: it waits in the queue (one running job per user;
    a user is the `X-Client-Id` header, else the `playground_client` cookie) and then trains.
    Follow it with `GET /api/cnn/jobs/{id}` or, live, the socket `/ws/cnn/{id}`.

    The socket sends JSON text messages, each with a `type`: first `status` (all of
    `GET /api/cnn/jobs/{id}`), then `start` (classes, photo counts, batches per epoch, the
    photos as fed), `batch` (at most 20 a second: epoch, batch, step, running loss and accuracy,
    progress, images_per_second, eta_seconds), `epoch` (its loss, accuracy, val_loss,
    val_accuracy), `pictures` (filters and feature maps as PNG data URLs, at most once a second)
    and a `status` at every change of state, queue position or pause; after the final `status`
    (done, failed or stopped, with the evaluation) the server closes the socket (1000). The
    page may send `{"type": "pause"}`, `{"type": "resume"}` or `{"type": "stop"}`; anything
    else is answered with an `error` message. An unknown job closes the socket with 4404; a
    job whose queue (Redis) cannot be reached now, with 1013 (try again later) and the reason.
    """
    s: Settings = request.app.state.settings
    if body.epochs > s.cnn_max_epochs:
        raise unprocessable(
            f"epochs must be at most {s.cnn_max_epochs} (PLAYGROUND_CNN_MAX_EPOCHS). "
            f"Received: epochs={body.epochs}",
            ("body", "epochs"),
        )
    if body.model == "scratch" and (body.image_size or 0) > s.cnn_max_image_size:
        raise unprocessable(
            f"image_size must be at most {s.cnn_max_image_size} for a model from scratch "
            f"(PLAYGROUND_CNN_MAX_IMAGE_SIZE). Received: image_size={body.image_size}",
            ("body", "image_size"),
        )
    photos = sets.get(body.dataset)
    if photos is None:
        raise unprocessable(
            "dataset: no data set has this id (data sets are kept while there is room); create "
            f"it again, or use shapes or colours. Received: dataset={body.dataset!r}",
            ("body", "dataset"),
        )
    if problem := photos.problem():
        raise unprocessable(f"dataset: {problem}", ("body", "dataset"))
    config = body.to_config()
    try:
        cnn.check_config(config)
    except ValueError as exc:
        raise unprocessable(str(exc)) from exc
    data = photos.image_set()
    shown = body.model_copy(update={"learning_rate": config.lr, "image_size": config.size})
    job_id = jobs.submit(
        train_job,
        TrainingJob(data, config, _cache_dir(s)),
        owner=owner,
        progress={
            "model": body.model,
            "dataset": body.dataset,
            "config": shown.model_dump(),
            "classes": list(data.class_names),
            "epochs": body.epochs,
        },
    )
    found = jobs.status(job_id)
    return JobCreated(id=job_id, state=found.state, queue_position=found.queue_position)


@router.get("/api/cnn/jobs")
def list_jobs(jobs: JobsDep, owner: ClientDep) -> list[JobSummary]:
    """
    Your jobs still remembered, newest first (you: the `X-Client-Id` header, else the
    `playground_client` cookie): a reloaded page finds its jobs again.
    """
    return [
        JobSummary(
            id=s.id,
            state=s.state,
            created_at=s.created_at,
            **{k: v for k, v in s.progress.items() if k in JobSummary.model_fields},
        )
        for s in jobs.owned(owner)
    ]


@router.get("/api/cnn/jobs/{job_id}", responses=_NO_JOB)
def get_job(job_id: str, jobs: JobsDep) -> JobOut:
    """
    A job's state (queued, running, done, failed, stopped), queue position, progress, metrics,
    curves, pictures and, once it ends, its evaluation.
    """
    return _job_out(_status(jobs, job_id))


@router.post("/api/cnn/jobs/{job_id}/stop", responses=_NO_JOB)
def stop_job(job_id: str, jobs: JobsDep) -> JobOut:
    """
    Stop a job: a queued one at once, a running one after its current step, keeping what it
    learned (its model, confusion matrix and downloads).
    """
    return _job_out(jobs.stop(job_id) or _status(jobs, job_id))


@router.post("/api/cnn/jobs/{job_id}/pause", responses=_NO_JOB)
def pause_job(job_id: str, jobs: JobsDep) -> JobOut:
    """Pause a job before its next step (it stays `running`, `paused: true`)."""
    return _job_out(jobs.pause(job_id) or _status(jobs, job_id))


@router.post("/api/cnn/jobs/{job_id}/resume", responses=_NO_JOB)
def resume_job(job_id: str, jobs: JobsDep) -> JobOut:
    """Resume a paused job."""
    return _job_out(jobs.resume(job_id) or _status(jobs, job_id))


async def classify(job_id: str, request: Request, jobs: JobsDep) -> ClassifyOut:
    """
    Classify a photo with the job's trained model: its classes, most probable first.
    """
    result = await run_in_threadpool(_result, jobs, job_id)  # Redis: off the event loop
    pixels = await _read_photo(request)
    start = time.perf_counter()
    cache_dir = _cache_dir(request.app.state.settings)

    def run() -> np.ndarray:
        classifier = _trained_model(job_id, result, cache_dir)
        x = cnn.resize_images(pixels[np.newaxis], result.config.size).astype(np.float32)
        return classifier.classify(x)[0]

    try:
        probabilities = await run_in_threadpool(run)
    except ModelUnavailable as exc:
        raise HTTPException(503, str(exc)) from exc
    order = np.argsort(-probabilities, kind="stable")[:5]
    return ClassifyOut(
        top=[
            Guess(label=result.class_names[i], probability=round(float(probabilities[i]), 6))
            for i in order
        ],
        compute_ms=round((time.perf_counter() - start) * 1000, 2),
    )


add_photo_route(
    router,
    "/api/cnn/jobs/{job_id}/classify",
    classify,
    responses={**_PHOTO_ERRORS, **_NO_JOB, **_NO_MODEL},
)


@router.get(
    "/api/cnn/jobs/{job_id}/model.keras",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "A .keras file"},
        **_NO_JOB,
        **_NO_MODEL,
    },
)
def download_model(job_id: str, request: Request, jobs: JobsDep) -> Response:
    """
    The trained model as a `.keras` file: `keras.saving.load_model("model.keras")` takes
    float32 [batch, size, size, 3] RGB in [0, 255] and gives the classes' probabilities.
    """
    result = _result(jobs, job_id)
    classifier = _trained_model(job_id, result, _cache_dir(request.app.state.settings))
    return Response(
        cnn.model_bytes(classifier.model),
        media_type="application/octet-stream",
        headers={"Content-Disposition": 'attachment; filename="model.keras"'},
    )


@router.get(
    "/api/cnn/jobs/{job_id}/train.py",
    response_class=Response,
    responses={
        200: {"content": {"text/x-python": {}}, "description": "A Python script"},
        **_NO_JOB,
        **_NO_MODEL,
    },
)
def download_script(job_id: str, jobs: JobsDep) -> Response:
    """
    A runnable Python script that builds and trains the same model with Keras
    (`image_dataset_from_directory`, the same layers and hyperparameters).
    """
    result = _result(jobs, job_id)
    return Response(
        cnn.export_script(result.config, result.class_names),
        media_type="text/x-python; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="train.py"'},
    )


# --- the socket ----------------------------------------------------------------------------------

_controls = TypeAdapter(Control)


@router.websocket("/ws/cnn/{job_id}")
async def follow_job(websocket: WebSocket, job_id: str) -> None:
    """A job, live: its `status`, then `start`, `batch`, `epoch`, `pictures` and each new
    `status` until it ends; the page may send `{"type": "pause" | "resume" | "stop"}`."""
    jobs: Jobs = websocket.app.state.live.jobs
    if await refuse_foreign_origin(websocket):
        return
    try:  # a job queue on Redis answers over the network: off the event loop
        found = await asyncio.to_thread(jobs.status, job_id)
    except JobRefused as exc:
        await websocket.close(code=status.WS_1013_TRY_AGAIN_LATER, reason=_reason(exc))
        return
    if found is None:
        await websocket.close(code=CLOSE_NO_SUCH_JOB)
        return
    await websocket.accept()
    sending = asyncio.Lock()  # the reader's error replies and the stream share the socket
    tasks = [
        asyncio.create_task(_send_stream(websocket, jobs, job_id, sending)),
        asyncio.create_task(_read_controls(websocket, jobs, job_id, sending)),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await task


async def _send_stream(websocket: WebSocket, jobs: Jobs, job_id: str, sending) -> None:
    code, reason = status.WS_1000_NORMAL_CLOSURE, "the job ended"
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        try:
            async with contextlib.aclosing(jobs.stream(job_id)) as stream:
                async for item in stream:
                    text = _message_text(item)
                    async with sending:
                        await websocket.send_text(text)
        except JobRefused as exc:  # its queue went away: the page comes back later
            code, reason = status.WS_1013_TRY_AGAIN_LATER, _reason(exc)
        await websocket.close(code=code, reason=reason)


def _reason(exc: Exception) -> str:
    """A close reason: at most 123 bytes (RFC 6455), cut at a character."""
    return str(exc).encode()[:123].decode(errors="ignore")


def _message_text(item: JobStatus | dict) -> str:
    if isinstance(item, JobStatus):
        return StatusMessage(**_job_out(item).model_dump()).model_dump_json()
    return json.dumps(item, allow_nan=False, separators=(",", ":"))


async def _read_controls(websocket: WebSocket, jobs: Jobs, job_id: str, sending) -> None:
    async for text in incoming(websocket):
        try:
            control = _controls.validate_python(parse_json(text or ""))
        except (BadMessage, ValidationError):
            reject("bad_message", path=websocket.url.path)
            error = ErrorMessage(
                message='Send {"type": "pause"}, {"type": "resume"} or {"type": "stop"}. '
                f"Received: {(text or '<binary>')[:80]!r}"
            )
            async with sending:
                await websocket.send_text(error.model_dump_json())
            continue
        try:  # off the event loop, as the status above
            await asyncio.to_thread(getattr(jobs, control.type), job_id)
        except JobRefused as exc:
            async with sending:
                await websocket.send_text(ErrorMessage(message=str(exc)).model_dump_json())


def warm_up(runtime) -> None:
    """Loads EfficientNet-Lite0 and traces its features in the background at start-up; a failure
    (the weights package missing) is reported by the first transfer job that needs it."""
    runtime.compiler.submit(cnn.warm_up, _cache_dir(runtime.settings))


LAB = Lab(
    "cnn",
    "CNN training",
    "Train a small convolutional network; classify dog photos.",
    70,
    short="CNN",
    router=router,
    bench=bench,
    warm_up=warm_up,
    # The model select; data sets, breeds and augmentations come from GET /api/cnn/catalog.
    choices={"model": [(m, LABELS["model"][m]) for m in cnn.MODELS]},
    ready=True,
)
