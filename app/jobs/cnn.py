"""The CNN lab's training job: `train_job`, its inputs and result, and the messages it reports.

`train_job(TrainingJob, reporter) -> TrainingResult` is a module-level function of picklable
inputs and result and imports no web route, so that a job queue can run it in another process.
It turns the reports of `models.cnn.train` into the job's progress (what
`GET /api/cnn/jobs/{id}` shows) and the messages of the socket `/ws/cnn/{id}` (`StartMessage`,
`BatchMessage`, `EpochMessage`, `PicturesMessage`). Pictures travel as data URLs: photos as JPEG,
filters and feature maps as PNG.
"""

import base64
import io
import time
from dataclasses import dataclass, fields
from typing import Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, Field, create_model

from app.jobs import JobStopped, Reporter
from models import cnn

MISTAKE_SIDE = 112  # photos shown: the fed, the probe, the misclassified
JPEG_QUALITY = 85
MAP_SIDE = 56  # larger feature maps are shrunk for the page
BATCH_MESSAGE_SECONDS = 0.05  # at most 20 batch messages a second; an epoch's last always goes
MAX_STEP_POINTS = 2000  # per-batch points a status keeps; past it every other one is dropped
# What the start of training adds to the job's progress.
STARTED = (
    "classes", "train_images", "val_images", "batches", "epochs", "parameters",
    "trainable_parameters", "cached_features", "fed",
)  # fmt: skip


class Metrics(BaseModel):
    """The current epoch's running training metrics and the last epoch's validation ones."""

    loss: float | None = None
    accuracy: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None


class EpochPoint(BaseModel):
    epoch: int
    loss: float
    accuracy: float
    val_loss: float
    val_accuracy: float
    seconds: float = Field(description="Training time so far, pauses left out.")


class StepPoint(BaseModel):
    step: int = Field(description="1-based over the whole training; x = step / batches epochs.")
    epoch: int
    batch: int
    loss: float = Field(description="The epoch's mean so far.")
    accuracy: float = Field(description="The epoch's mean so far.")


class FedImage(BaseModel):
    label: str
    image: str = Field(description="JPEG data URL.")


class PictureSet(BaseModel):
    name: str = Field(description="The layer: `conv1`, `relu1`… or EfficientNet-Lite0's.")
    shape: list[int] = Field(
        description="Filters: (k, k, 3, filters); maps: (height, width, channels)."
    )
    images: list[str] = Field(
        description="PNG data URLs; draw them with image-rendering: pixelated."
    )


class Pictures(BaseModel):
    step: int = Field(description="The training step they show; 0: before training.")
    filters: PictureSet = Field(description="The first conv layer's kernels, grey = 0.")
    feature_maps: list[PictureSet] = Field(
        description=f"The probe's first {cnn.MAX_MAPS} channels a layer."
    )
    probe: str = Field(description="The probe photo (the first validation photo), JPEG data URL.")


class MistakeOut(BaseModel):
    index: int = Field(description="Its place among the validation photos.")
    true: int
    predicted: int
    true_label: str
    predicted_label: str
    probability: float = Field(description="The model's probability for `predicted`.")
    image: str = Field(description="JPEG data URL.")
    grad_cam: str = Field(description="The photo with Grad-CAM for `predicted` over it (red).")


class Evaluation(BaseModel):
    classes: list[str]
    confusion: list[list[int]] = Field(
        description="confusion[i][j]: validation photos of class i the model gave class j."
    )
    accuracy: float
    mistakes: list[MistakeOut] = Field(
        description=f"The misclassified validation photos, at most {cnn.MAX_MISTAKES}; a cell "
        "(i, j) opens those with true = i and predicted = j."
    )


def _report_message(kind: str, report: type, instead: tuple[str, ...] = (), **more) -> type:
    """The socket message of one of `cnn.train`'s reports: `type` = `kind`, `more` (pydantic
    field definitions) in place of the report's fields named `instead`, then its other fields."""
    own = {f.name: (f.type, ...) for f in fields(report) if f.name not in instead}
    return create_model(
        f"{kind.title()}Message",
        __doc__=f"`cnn.{report.__name__}` on the wire.",
        type=(Literal[kind], kind),
        **more,
        **own,
    )


def _carried(report, instead: tuple[str, ...] = ()) -> dict:
    """The fields of `report` that its message carries as they are (`_report_message`)."""
    return {f.name: getattr(report, f.name) for f in fields(report) if f.name not in instead}


# The start's fields its message shows otherwise: class names, pictures, `cached_features`.
_START_SHOWN_OTHERWISE = ("class_names", "fed", "fed_labels", "cached")
StartMessage = _report_message(
    "start",
    cnn.Start,
    instead=_START_SHOWN_OTHERWISE,
    classes=(list[str], ...),
    cached_features=(bool, ...),
    fed=(list[FedImage], ...),
)
BatchMessage = _report_message("batch", cnn.BatchReport)
EpochMessage = _report_message("epoch", cnn.EpochReport, epochs=(int, ...))


class PicturesMessage(Pictures):
    type: Literal["pictures"] = "pictures"


# --- pictures ----------------------------------------------------------------------------------


def _data_url(pixels: np.ndarray, side: int | None = None, photo: bool = False) -> str:
    """uint8 `[h, w, 3]` or `[h, w]` pixels, shrunk to `side` at most, as a data URL: a photo as
    JPEG (a noisy photo's PNG is ten times larger), filters and maps as PNG (exact pixels)."""
    image = Image.fromarray(np.ascontiguousarray(pixels))
    if side is not None and max(image.size) > side:
        image.thumbnail((side, side), Image.Resampling.BOX)
    buffer = io.BytesIO()
    if photo:
        image.save(buffer, "JPEG", quality=JPEG_QUALITY)
    else:
        image.save(buffer, "PNG", compress_level=1)
    media = "image/jpeg" if photo else "image/png"
    return f"data:{media};base64," + base64.b64encode(buffer.getvalue()).decode()


def photo_url(pixels: np.ndarray, side: int) -> str:
    return _data_url(pixels, side, photo=True)


def _unit_url(x: np.ndarray, side: int | None = None) -> str:
    """Values in [0, 1] as a PNG data URL."""
    return _data_url(np.round(np.clip(x, 0, 1) * 255).astype(np.uint8), side)


def _grad_cam_overlay(image: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """The photo with the Grad-CAM map (resized to it) blended in as red."""
    size = image.shape[:2][::-1]
    heat = np.asarray(
        Image.fromarray(cam.astype(np.float32), "F").resize(size, Image.Resampling.BILINEAR)
    )
    alpha = 0.6 * np.clip(heat, 0, 1)[..., np.newaxis]
    red = np.array([255.0, 0.0, 0.0])
    return np.round(image * (1 - alpha) + red * alpha).astype(np.uint8)


def _pictures(p: cnn.Pictures) -> Pictures:
    return Pictures(
        step=p.step,
        filters=PictureSet(
            name=p.filters_layer,
            shape=[*p.filters.shape[1:], len(p.filters)],
            images=[_unit_url(f) for f in p.filters],
        ),
        feature_maps=[
            PictureSet(
                name=m.name, shape=list(m.shape), images=[_unit_url(x, MAP_SIDE) for x in m.maps]
            )
            for m in p.feature_maps
        ],
        probe=photo_url(p.probe, MISTAKE_SIDE),
    )


# --- the job -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingJob:
    """`train_job`'s inputs: the photos, what to train, where EfficientNet-Lite0 is cached."""

    data: cnn.ImageSet
    config: cnn.TrainConfig
    cache_dir: str | None


@dataclass(frozen=True)
class TrainingResult:
    """`train_job`'s result: enough to rebuild the trained model (`cnn.rebuild`)."""

    config: cnn.TrainConfig
    class_names: tuple[str, ...]
    weights: list[np.ndarray]


class _Reporting(cnn.Monitor):
    """Turns `cnn.train`'s reports into the job's progress and the socket's messages."""

    def __init__(self, reporter: Reporter, class_names: tuple[str, ...]):
        self.reporter, self.class_names = reporter, class_names
        self.epochs = 0
        self.steps: list[dict] = []
        self.history: list[dict] = []
        self.sent = 0.0  # when the last batch message went
        self.val: dict = {}  # the last epoch's validation metrics

    def checkpoint(self) -> None:
        try:
            self.reporter.checkpoint()
        except JobStopped:
            raise cnn.TrainingStopped from None

    def on_start(self, start: cnn.Start) -> None:
        self.epochs = start.epochs
        message = StartMessage(
            **_carried(start, _START_SHOWN_OTHERWISE),
            classes=list(start.class_names),
            cached_features=start.cached,
            fed=[
                FedImage(label=self.class_names[label], image=photo_url(image, MISTAKE_SIDE))
                for image, label in zip(start.fed, start.fed_labels, strict=True)
            ],
        ).model_dump()
        self.reporter.update(**{k: message[k] for k in STARTED})
        self.reporter.emit(message)

    def on_batch(self, r: cnn.BatchReport) -> None:
        now = time.monotonic()
        if now - self.sent < BATCH_MESSAGE_SECONDS and r.batch != r.batches:
            return
        self.sent = now
        message = BatchMessage(**_carried(r)).model_dump()
        self.steps.append({k: message[k] for k in ("step", "epoch", "batch", "loss", "accuracy")})
        if len(self.steps) > MAX_STEP_POINTS:
            self.steps = self.steps[::2]
        self.reporter.update(
            batch=r.batch,
            step=r.step,
            progress=r.progress,
            metrics={"loss": r.loss, "accuracy": r.accuracy, **self.val},
            images_per_second=r.images_per_second,
            eta_seconds=r.eta_seconds,
            steps=tuple(self.steps),
        )
        self.reporter.emit(message)

    def on_epoch(self, r: cnn.EpochReport) -> None:
        message = EpochMessage(**_carried(r), epochs=self.epochs).model_dump()
        self.val = {"val_loss": r.val_loss, "val_accuracy": r.val_accuracy}
        self.history.append(
            EpochPoint(**{k: message[k] for k in EpochPoint.model_fields}).model_dump()
        )
        self.reporter.update(
            epoch=r.epoch,
            metrics={"loss": r.loss, "accuracy": r.accuracy, **self.val},
            history=tuple(self.history),
        )
        self.reporter.emit(message)

    def on_pictures(self, pictures: cnn.Pictures) -> None:
        shown = _pictures(pictures).model_dump()
        self.reporter.update(pictures=shown)
        self.reporter.emit(PicturesMessage(**shown).model_dump())


def _evaluation(trained: cnn.Trained) -> dict:
    names = trained.class_names
    mistakes = [
        MistakeOut(
            index=m.index,
            true=m.true,
            predicted=m.predicted,
            true_label=names[m.true],
            predicted_label=names[m.predicted],
            probability=m.probability,
            image=photo_url(m.image, MISTAKE_SIDE),
            grad_cam=photo_url(_grad_cam_overlay(m.image, m.grad_cam), MISTAKE_SIDE),
        )
        for m in trained.mistakes()
    ]
    right = int(np.trace(trained.confusion))
    return Evaluation(
        classes=list(names),
        confusion=trained.confusion.tolist(),
        accuracy=right / max(1, int(trained.confusion.sum())),
        mistakes=mistakes,
    ).model_dump()


def train_job(job: TrainingJob, reporter: Reporter) -> TrainingResult:
    """Trains `job.config` on `job.data`, reporting as it goes; the job function of the lab.

    Picklable in and out, and importable by name (`app.labs.cnn:train_job`), so that another
    process could run it.
    """
    trained = cnn.train(
        job.data, job.config, _Reporting(reporter, job.data.class_names), job.cache_dir
    )
    reporter.update(evaluation=_evaluation(trained), has_model=True)
    return TrainingResult(job.config, trained.class_names, trained.weights)
