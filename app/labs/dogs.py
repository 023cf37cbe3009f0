"""Dog photos: a pretrained ImageNet CNN names the breed, and shows where it looked.

The classifier (EfficientNet-Lite0 from `models/classifier.py`, or the `.keras` model
`PLAYGROUND_CLASSIFIER` names) is built once per process, in the background at start-up (`warm_up`,
on the runtime's compiler pool), and shared by every app of the process. Until it is ready, or when
it cannot be built, every endpoint answers 503 with the reason (with `Retry-After` while it loads).

A photo is decoded safely (`models/images.py`) and kept in the shared image store, so that the
follow-up calls (other preprocessings, Grad-CAM, occlusion, feature maps) name it by its id. All
of the lab's model work waits in one bounded queue (`MicroBatcher`): the classify requests waiting
when the model is free run as one batch through its traced call, and a full queue answers 503 with
`Retry-After`, so a class uploading at once never holds more than one of the server's TensorFlow
threads.
"""

import asyncio
import base64
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from app.bench.dogs import bench
from app.image_store import ImageStore, ImageStoreDep, StoredImage
from app.labs import Lab
from app.request_limits import JSON_ERRORS, StrictJSONRoute, unprocessable
from app.routes.uploads import STORE_MAX_SIDE, add_photo_route, decode_photo
from app.settings import Settings
from models.classifier import (
    DOG_CLASSES,
    DOG_THRESHOLD,
    MAX_OCCLUSION_GRID,
    OCCLUSION_PATCH,
    OCCLUSION_STRIDE,
    PREPROCESSINGS,
    TOP_K,
    Classifier,
    ModelUnavailable,
    Prediction,
    Step,
    class_names,
    load_classifier,
    top_k,
)
from models.efficientnet import NUM_CLASSES

log = logging.getLogger(__name__)

PREPROCESSING_LABELS = {
    "correct": "correct",
    "unscaled": "0–255 unscaled",
    "bgr": "BGR",
    "squashed": "aspect squashed",
}
LOADING_RETRY_SECONDS = 2
BUSY_RETRY_SECONDS = 1
STEP_SIDE = 112  # the pictures of "what the model sees", at most this many pixels a side
MAX_FEATURE_CHANNELS = 64
DECIMALS = 6
MAP_DECIMALS = 4
ID_PATTERN = r"^[0-9a-f]{32}$"


router = APIRouter(prefix="/api/dogs", tags=["dogs"], route_class=StrictJSONRoute)


# --- the model, built once per process ------------------------------------------------------------

_loads: dict[tuple, Future] = {}  # (cache folder, model file) → the build, shared by every app
_loads_lock = threading.Lock()


def _build(settings: Settings) -> Classifier:
    """The classifier, with the traces the page asks for first (the default feature maps)."""
    classifier = load_classifier(settings.cache_dir, settings.classifier)
    blank = np.zeros((classifier.image_size, classifier.image_size, 3), np.float32)
    classifier.feature_maps(blank, classifier.feature_layers[0].name)
    return classifier


def start_loading(settings: Settings, executor) -> Future | None:
    """The process's build of the classifier these settings name, submitted to `executor` if
    there is none (or a shutdown dropped it); None if there is none and no executor."""
    key = (settings.cache_dir, settings.classifier)
    with _loads_lock:
        build = _loads.get(key)
        if (build is None or build.cancelled()) and executor is not None:
            build = _loads[key] = executor.submit(_build, settings)
            build.add_done_callback(_log_failure)
        return build


def _log_failure(build: Future) -> None:
    if not build.cancelled() and (exc := build.exception()) is not None:
        log.warning("The dog-photo lab's classifier is unavailable: %s", exc)


def warm_up(runtime) -> None:
    """Builds the classifier in the background (a second or two; loading its cache costs as much)."""
    start_loading(runtime.settings, runtime.compiler)


# --- micro-batching -------------------------------------------------------------------------------


class QueueFull(Exception):
    """The lab's queue holds as many requests as it may."""


@dataclass
class _Job:
    future: Future
    image: np.ndarray | None = None  # a classification: float32 [size, size, 3]
    work: Callable[[], object] | None = None  # anything else, run alone


class MicroBatcher:
    """One bounded queue for a lab's model work, drained by one job at a time on a thread pool.

    Whenever the model is free, the classifications waiting (at most `max_batch`) are taken
    together and run as one batch; any other work runs alone, in order. Nothing waits for a
    timer: a batch is whatever arrived while the previous call ran.

    Args:
        classifier: The model that classifies the batches.
        max_batch: Largest batch, e.g. 8.
        max_waiting: Requests that may wait; one more raises `QueueFull`.
    """

    def __init__(self, classifier: Classifier, max_batch: int, max_waiting: int):
        self.classifier = classifier
        self.max_batch = max_batch
        self.max_waiting = max_waiting
        self._waiting: deque[_Job] = deque()
        self._draining = False
        self._lock = threading.Lock()

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def classify(self, image: np.ndarray, executor) -> Future:
        """Queues one image; the future's result is (probabilities `[classes]`, batch size)."""
        return self._submit(_Job(Future(), image=image), executor)

    def run(self, work: Callable[[], object], executor) -> Future:
        """Queues `work()`, to run alone; the future's result is what it returns."""
        return self._submit(_Job(Future(), work=work), executor)

    def _submit(self, job: _Job, executor) -> Future:
        with self._lock:
            if len(self._waiting) >= self.max_waiting:
                raise QueueFull(f"{len(self._waiting)} requests are waiting for the classifier")
            self._waiting.append(job)
            start = not self._draining
            self._draining = True
        if start:
            executor.submit(self._drain)
        return job.future

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._waiting:
                    self._draining = False
                    return
                jobs = self._take()
            # A request whose client went away was cancelled: it is not computed.
            jobs = [job for job in jobs if job.future.set_running_or_notify_cancel()]
            if jobs:
                self._run(jobs)

    def _take(self) -> list[_Job]:
        """The next job; with a classification, every classification waiting, up to a batch."""
        first = self._waiting.popleft()
        if first.image is None:
            return [first]
        batch, others = [first], []
        while self._waiting and len(batch) < self.max_batch:
            job = self._waiting.popleft()
            (batch if job.image is not None else others).append(job)
        self._waiting.extendleft(reversed(others))
        return batch

    def _run(self, jobs: list[_Job]) -> None:
        try:
            if jobs[0].work is not None:
                jobs[0].future.set_result(jobs[0].work())
                return
            probabilities = self.classifier.classify(np.stack([job.image for job in jobs]))
            for job, row in zip(jobs, probabilities, strict=True):
                job.future.set_result((row, len(jobs)))
        except Exception as exc:  # the requests answer it; the queue keeps going
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)


# --- the classifier of a request ------------------------------------------------------------------

_batchers: "weakref.WeakKeyDictionary[object, MicroBatcher]" = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Served:
    """The ready classifier of a request's app, its queue and the pool the queue runs on."""

    classifier: Classifier
    batcher: MicroBatcher
    pool: object

    async def classify(self, image: np.ndarray) -> tuple[np.ndarray, int]:
        """(probabilities, batch size) of one prepared image, through the queue."""
        return await asyncio.wrap_future(self._queued(self.batcher.classify, image))

    async def run(self, work: Callable[[], object]) -> object:
        """`work()`'s result, through the queue."""
        return await asyncio.wrap_future(self._queued(self.batcher.run, work))

    def _queued(self, submit, argument) -> Future:
        try:
            return submit(argument, self.pool)
        except QueueFull as exc:
            raise busy(f"The classifier is busy: {exc}. Try again in a second.") from exc


def busy(reason: str) -> HTTPException:
    return HTTPException(503, reason, headers={"Retry-After": str(BUSY_RETRY_SECONDS)})


def served(request: Request) -> Served:
    """The app's classifier, or 503 with the reason: still loading (Retry-After) or unavailable."""
    runtime = request.app.state.live
    build = start_loading(runtime.settings, runtime.compiler)
    if build is None or not build.done() or runtime.pool is None:  # the pools start with the app
        # Built after the live labs' start-up compiles: on a busy machine that is minutes.
        queued = runtime.compiling
        raise HTTPException(
            503,
            "The dog classifier is still loading: it is built in the background after the "
            "server starts, behind the live labs' start-up work"
            + (f" ({queued} jobs still queued)" if queued else "")
            + ". Try again shortly.",
            headers={"Retry-After": str(LOADING_RETRY_SECONDS)},
        )
    if (exc := build.exception()) is not None:
        reason = str(exc) if isinstance(exc, ModelUnavailable) else f"It failed to build: {exc}"
        raise HTTPException(503, f"The dog classifier is unavailable. {reason}")
    classifier = build.result()
    return Served(classifier, batcher_of(runtime, classifier), runtime.pool)


def batcher_of(runtime, classifier: Classifier) -> MicroBatcher:
    """The queue of an app's runtime: one per app, sized by its settings."""
    with _loads_lock:
        batcher = _batchers.get(runtime)
        if batcher is None or batcher.classifier is not classifier:
            settings = runtime.settings
            batcher = _batchers[runtime] = MicroBatcher(
                classifier, settings.classifier_batch, settings.classifier_queue
            )
        return batcher


ServedDep = Annotated[Served, Depends(served)]


# --- requests and answers -------------------------------------------------------------------------


class PhotoRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image_id: str = Field(
        pattern=ID_PATTERN,
        description="The id `POST /api/dogs/classify` (or `POST /api/images`) returned.",
    )


class PredictRequest(PhotoRequest):
    preprocessing: Literal[*PREPROCESSINGS] = Field(
        "correct",
        description="correct: centre crop, resize, the model's own scaling; unscaled: 0–255 fed "
        "where [-1, 1] is expected; bgr: red and blue swapped; squashed: the whole photo resized "
        "to a square, aspect ratio lost.",
    )


ClassIndex = Annotated[
    int | None,
    Field(
        ge=0,
        lt=NUM_CLASSES,
        description="The ImageNet class to explain (e.g. 207, Golden Retriever); defaults to "
        "the most probable class.",
    ),
]
Layer = Annotated[
    str | None,
    Field(
        max_length=100,
        description="A feature layer's name (`GET /api/dogs/model` lists them).",
    ),
]


class GradCamRequest(PhotoRequest):
    class_index: ClassIndex = None
    layer: Layer = None


class OcclusionRequest(PhotoRequest):
    class_index: ClassIndex = None
    patch: int = Field(OCCLUSION_PATCH, ge=8, le=224, description="Side of the grey square, px.")
    stride: int = Field(
        OCCLUSION_STRIDE,
        ge=4,
        le=224,
        description=f"Step between its positions, px; at most {MAX_OCCLUSION_GRID} a side.",
    )


class FeaturesRequest(PhotoRequest):
    layer: Layer = None
    channels: int = Field(
        16, ge=1, le=MAX_FEATURE_CHANNELS, description="How many of the most active channels."
    )


class Breed(BaseModel):
    breed: str = Field(description="Readable name, e.g. Golden Retriever.")
    index: int = Field(description="Its ImageNet class index (151–268 are the dog breeds).")
    probability: float


class Guess(BaseModel):
    name: str
    index: int
    probability: float


class Quantized(BaseModel):
    """An array sent as bytes: value = low + byte / 255 · (high − low)."""

    shape: list[int]
    low: float
    high: float
    data: str = Field(description="base64 of the uint8 bytes, row-major over `shape`.")


class StepOut(BaseModel):
    name: str
    shape: list[int]
    dtype: str
    low: float = Field(description="Smallest value after the step.")
    high: float = Field(description="Largest value after the step.")
    detail: str
    image: Quantized | None = Field(
        None, description=f"The array after the step, at most {STEP_SIDE} px a side."
    )


class Classification(BaseModel):
    dog_probability: float = Field(description="Probability mass on the 118 dog breeds.")
    looks_like_dog: bool = Field(description=f"dog_probability ≥ {DOG_THRESHOLD}.")
    message: str = Field(description="One sentence: the breed, or what it looks like instead.")
    top: list[Breed] = Field(description=f"The {TOP_K} most probable breeds, most probable first.")
    top_classes: list[Guess] = Field(
        description=f"The {TOP_K} most probable of all classes: what it is if not a dog."
    )
    preprocessing: str
    steps: list[StepOut] = Field(description="From the decoded photo to what the network sees.")
    compute_ms: float = Field(description="Server time, from the request read to the answer.")


class ClassifyResponse(Classification):
    id: str = Field(description="The photo's id for the follow-up calls; it expires.")
    format: str
    width: int = Field(description=f"Width as stored (at most {STORE_MAX_SIDE} px a side).")
    height: int
    original_width: int
    original_height: int
    batch_size: int = Field(description="How many photos the model classified in this call.")


class GradCamResponse(BaseModel):
    class_index: int
    name: str
    probability: float
    layer: str
    shape: list[int] = Field(description="The layer's output (height, width, channels).")
    heatmap: list[list[float]] = Field(
        description="[height][width] in [0, 1], over the model's 224×224 input (centre crop)."
    )
    compute_ms: float


class OcclusionResponse(BaseModel):
    class_index: int
    name: str
    probability: float = Field(description="The class's probability without occlusion.")
    patch: int
    stride: int
    offsets: list[int] = Field(description="Patch positions along each axis, px of the input.")
    drop: list[list[float]] = Field(
        description="[row][column]: probability lost when the patch hides that place (negative: "
        "hiding it helps the class)."
    )
    compute_ms: float


class FeaturesResponse(BaseModel):
    layer: str
    shape: list[int] = Field(description="The layer's output (height, width, channels).")
    channels: list[int] = Field(description="The channels shown, most active first.")
    maps: Quantized = Field(description="(channels, height, width), one scale for all.")
    compute_ms: float


class LayerOut(BaseModel):
    name: str
    shape: list[int]


class ModelInfo(BaseModel):
    name: str
    parameters: int
    image_size: int
    classes: int
    preprocessings: list[str]
    layers: list[LayerOut] = Field(description="Feature layers, input to output.")
    grad_cam_layer: str = Field(description="Grad-CAM's default: the last feature layer.")
    feature_layer: str = Field(description="Feature maps' default: the first (edges, colours).")
    dog_classes: list[int] = Field(description="First and last index of the dog breeds.")
    dog_threshold: float


# --- helpers --------------------------------------------------------------------------------------


def _photo(store: ImageStore, image_id: str) -> StoredImage:
    image = store.get(image_id)
    if image is None:
        raise HTTPException(
            404, f"No photo has the id {image_id}: photos expire after a while. Upload it again."
        )
    return image


def _check_layer(classifier: Classifier, layer: str | None) -> str:
    names = [info.name for info in classifier.feature_layers]
    if layer is None:
        return classifier.default_layer
    if layer not in names:
        raise unprocessable(
            f"layer must be one of the model's {len(names)} feature layers (GET /api/dogs/model "
            f"lists them), e.g. {classifier.default_layer!r}. Received: layer={layer!r}",
            ("body", "layer"),
        )
    return layer


def _quantize(x: np.ndarray, low: float, high: float) -> np.ndarray:
    span = high - low or 1.0
    return np.rint((np.asarray(x, np.float32) - low) * (255 / span)).clip(0, 255).astype(np.uint8)


def _quantized(q: np.ndarray, low: float, high: float) -> Quantized:
    return Quantized(
        shape=list(q.shape),
        low=round(low, DECIMALS),
        high=round(high, DECIMALS),
        data=base64.b64encode(np.ascontiguousarray(q).tobytes()).decode(),
    )


def _picture(step: Step) -> Quantized:
    """The step's array as bytes, shrunk to `STEP_SIDE`: uint8 exactly, floats over their range."""
    low, high = (0.0, 255.0) if step.dtype == "uint8" else (step.low, step.high)
    q = _quantize(step.values, low, high)
    height, width = q.shape[:2]
    if max(height, width) > STEP_SIDE:
        scale = STEP_SIDE / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        picture = Image.fromarray(q.squeeze(-1) if q.shape[2] == 1 else q)
        q = np.asarray(picture.resize(size, Image.Resampling.BOX))
        q = q.reshape(size[1], size[0], -1)
    return _quantized(q, low, high)


def _steps(steps: tuple[Step, ...], stored: StoredImage, pictures: bool) -> list[StepOut]:
    out = []
    for i, step in enumerate(steps):
        detail = step.detail
        width, height = stored.original_size
        if i == 0 and (width, height) != (step.shape[1], step.shape[0]):
            detail = f"a {width}×{height} photo, kept at {step.shape[1]}×{step.shape[0]}"
        out.append(
            StepOut(
                name=step.name,
                shape=list(step.shape),
                dtype=step.dtype,
                low=round(step.low, DECIMALS),
                high=round(step.high, DECIMALS),
                detail=detail,
                image=_picture(step) if pictures else None,
            )
        )
    return out


def _percent(p: float) -> str:
    return f"{p:.0%}" if p >= 0.01 else "under 1%"


def _classification(
    prediction: Prediction, preprocessing: str, steps: list[StepOut], start: float
) -> dict:
    """The fields of a `Classification`."""
    p = prediction.dog_probability
    if prediction.looks_like_dog:
        best = prediction.top_breeds[0]
        message = (
            f"This looks like a dog ({_percent(p)} of the probability is on dog breeds): most "
            f"likely a {best.name} ({_percent(best.probability)})."
        )
    else:
        best = prediction.top_classes[0]
        share = f"only {_percent(p)}" if p >= 0.01 else _percent(p)
        message = (
            f"This does not look like a dog: {share} of the probability is on dog breeds. "
            f"Its best guess: {best.name} ({_percent(best.probability)})."
        )
    return {
        "dog_probability": round(min(p, 1.0), DECIMALS),
        "looks_like_dog": prediction.looks_like_dog,
        "message": message,
        "top": [
            Breed(breed=g.name, index=g.index, probability=round(g.probability, DECIMALS))
            for g in prediction.top_breeds
        ],
        "top_classes": [
            Guess(name=g.name, index=g.index, probability=round(g.probability, DECIMALS))
            for g in prediction.top_classes
        ],
        "preprocessing": preprocessing,
        "steps": steps,
        "compute_ms": _elapsed(start),
    }


def _elapsed(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)


def _timed(response: Response, answer: BaseModel) -> BaseModel:
    response.headers["Server-Timing"] = f"compute;dur={answer.compute_ms}"
    return answer


def _prepared(classifier: Classifier, stored: StoredImage, preprocessing: str = "correct"):
    try:
        return classifier.prepare(stored.pixels, preprocessing)
    except ValueError as exc:  # "unscaled" for a model whose scaling is unknown
        raise unprocessable(str(exc), ("body", "preprocessing")) from exc


def _class_index(classifier: Classifier, image: np.ndarray, class_index: int | None):
    """(class, its probability): the most probable class if none is given."""
    probabilities = classifier.classify(image[np.newaxis])[0]
    index = int(np.argmax(probabilities)) if class_index is None else class_index
    return index, float(probabilities[index])


# --- endpoints ------------------------------------------------------------------------------------

_UNAVAILABLE = {
    503: {
        "description": "The classifier is loading (`Retry-After`), unavailable (the reason says "
        "what to install), or busy: its queue is full (`Retry-After`)."
    }
}
_PHOTO_ERRORS = {**JSON_ERRORS, 404: {"description": "Unknown or expired image_id"}, **_UNAVAILABLE}


@router.get("/model", responses=_UNAVAILABLE)
def model(served: ServedDep) -> ModelInfo:
    """The classifier: its input, its feature layers (for Grad-CAM and feature maps), defaults."""
    classifier = served.classifier
    return ModelInfo(
        name=classifier.model.name,
        parameters=classifier.model.count_params(),
        image_size=classifier.image_size,
        classes=classifier.num_classes,
        preprocessings=list(classifier.preprocessings),
        layers=[LayerOut(name=la.name, shape=list(la.shape)) for la in classifier.feature_layers],
        grad_cam_layer=classifier.default_layer,
        feature_layer=classifier.feature_layers[0].name,
        dog_classes=[DOG_CLASSES[0], DOG_CLASSES[-1]],
        dog_threshold=DOG_THRESHOLD,
    )


async def classify(
    request: Request, served: ServedDep, store: ImageStoreDep, response: Response
) -> ClassifyResponse:
    """
    Name the dog breed in a photo: the 5 most probable of ImageNet's 118 breeds, the probability
    that it is a dog at all, and, when it is not, what it looks like instead.

    The photo is kept for a while under the answer's `id`, for `/predict`, `/gradcam`,
    `/occlusion` and `/features`. Photos arriving together are classified in one batch.
    """
    start = time.perf_counter()
    if served.batcher.waiting >= served.batcher.max_waiting:  # before decoding anything
        raise busy(f"The classifier is busy: {served.batcher.waiting} photos are waiting.")
    decoded = await decode_photo(request)
    stored = StoredImage(decoded.pixels, decoded.format, decoded.original_size, decoded.file)
    prepared = await run_in_threadpool(served.classifier.prepare, decoded.pixels)
    probabilities, batch_size = await served.classify(prepared.pixels)
    height, width = decoded.pixels.shape[:2]
    return _timed(
        response,
        ClassifyResponse(
            id=store.put(stored),
            format=decoded.format,
            width=width,
            height=height,
            original_width=decoded.original_size[0],
            original_height=decoded.original_size[1],
            batch_size=batch_size,
            **_classification(
                top_k(probabilities), "correct", _steps(prepared.steps, stored, False), start
            ),
        ),
    )


add_photo_route(
    router,
    "/classify",
    classify,
    responses={
        413: {"description": "The file is over the byte cap, or the image over the pixel cap."},
        415: {"description": "Not a JPEG, PNG, GIF, BMP or WebP image by content."},
        422: {"description": "Empty, damaged or truncated image, or a form without `file`."},
        **_UNAVAILABLE,
    },
)


@router.post("/predict", responses=_PHOTO_ERRORS)
async def predict(
    body: PredictRequest, served: ServedDep, store: ImageStoreDep, response: Response
) -> Classification:
    """
    Classify an uploaded photo with a preprocessing, right or wrong, and show each step from the
    photo to what the network sees: its shape, dtype, value range and a small picture.
    """
    start = time.perf_counter()
    stored = _photo(store, body.image_id)
    prepared = await run_in_threadpool(_prepared, served.classifier, stored, body.preprocessing)
    probabilities, _ = await served.classify(prepared.pixels)
    steps = await run_in_threadpool(_steps, prepared.steps, stored, True)
    return _timed(
        response,
        Classification(**_classification(top_k(probabilities), body.preprocessing, steps, start)),
    )


@router.post("/gradcam", responses=_PHOTO_ERRORS)
async def gradcam(
    body: GradCamRequest, served: ServedDep, store: ImageStoreDep, response: Response
) -> GradCamResponse:
    """
    Grad-CAM: where in the photo (the model's centre crop) the evidence for a class lies, at a
    layer's resolution: 7×7 for the last layer, finer and noisier for earlier ones.
    """
    start = time.perf_counter()
    classifier = served.classifier
    layer = _check_layer(classifier, body.layer)
    x = (await run_in_threadpool(_prepared, classifier, _photo(store, body.image_id))).pixels

    def explain():
        index, probability = _class_index(classifier, x, body.class_index)
        return index, probability, classifier.grad_cam(x[np.newaxis], [index], layer)[0]

    index, probability, heatmap = await served.run(explain)
    info = classifier.feature_layers[[la.name for la in classifier.feature_layers].index(layer)]
    return _timed(
        response,
        GradCamResponse(
            class_index=index,
            name=class_names()[index],
            probability=round(probability, DECIMALS),
            layer=layer,
            shape=list(info.shape),
            heatmap=np.round(heatmap, MAP_DECIMALS).tolist(),
            compute_ms=_elapsed(start),
        ),
    )


@router.post("/occlusion", responses=_PHOTO_ERRORS)
async def occlusion(
    body: OcclusionRequest, served: ServedDep, store: ImageStoreDep, response: Response
) -> OcclusionResponse:
    """
    Occlusion sensitivity: a grey square slides over the photo and the class's probability is
    read at every place; where hiding the photo costs the most, the evidence is. An independent
    check of Grad-CAM, with no gradient: 49 classifications with the defaults, about half a second.
    """
    start = time.perf_counter()
    classifier = served.classifier
    x = (await run_in_threadpool(_prepared, classifier, _photo(store, body.image_id))).pixels

    def occlude():
        index = body.class_index
        if index is None:
            index = int(np.argmax(classifier.classify(x[np.newaxis])[0]))
        try:
            return index, classifier.occlusion(x, index, body.patch, body.stride)
        except ValueError as exc:  # a grid too fine, a patch larger than the input
            raise unprocessable(str(exc)) from exc

    index, result = await served.run(occlude)
    return _timed(
        response,
        OcclusionResponse(
            class_index=index,
            name=class_names()[index],
            probability=round(result.probability, DECIMALS),
            patch=result.patch,
            stride=body.stride,
            offsets=list(result.offsets),
            drop=np.round(result.drop, MAP_DECIMALS).tolist(),
            compute_ms=_elapsed(start),
        ),
    )


@router.post("/features", responses=_PHOTO_ERRORS)
async def features(
    body: FeaturesRequest, served: ServedDep, store: ImageStoreDep, response: Response
) -> FeaturesResponse:
    """
    A layer's feature maps for the photo, its most active channels first: early layers respond
    to edges and colours, later ones to parts (an eye, an ear, fur).
    """
    start = time.perf_counter()
    classifier = served.classifier
    layer = _check_layer(classifier, body.layer or classifier.feature_layers[0].name)
    x = (await run_in_threadpool(_prepared, classifier, _photo(store, body.image_id))).pixels
    maps = await served.run(lambda: classifier.feature_maps(x, layer, body.channels))
    low, high = float(maps.maps.min()), float(maps.maps.max())
    return _timed(
        response,
        FeaturesResponse(
            layer=layer,
            shape=list(maps.layer.shape),
            channels=maps.channels.tolist(),
            maps=_quantized(_quantize(maps.maps, low, high), low, high),
            compute_ms=_elapsed(start),
        ),
    )


LAB = Lab(
    "dogs",
    "Dog photos",
    "A pretrained CNN names the breed in your photos, and shows where it looked.",
    65,
    short="Dogs",
    router=router,
    bench=bench,
    warm_up=warm_up,
    choices={"preprocessing": [(p, PREPROCESSING_LABELS[p]) for p in PREPROCESSINGS]},
)
