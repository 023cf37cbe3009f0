"""Working with images: what TensorFlow sees at every step from a file to a batch tensor.

Its JSON endpoints, under `/api/image-lab` (`/api/images` is the upload route every lab shares):
describe a file (format, mode, EXIF orientation raw and applied, what `tf.io.decode_image`
returns), run a pipeline of steps with an inspector at each (statistics, histograms, a preview,
the TensorFlow call), normalizations side by side with a tiny network's first gradient,
augmentation grids from a seed, the pipeline as a runnable snippet and as a PNG download.

Images are an upload's id (`POST /api/images` keeps a working copy as TensorFlow decodes it, at
most `WORKING_SIDE` pixels a side) or a generated sample file. Previews are not inlined: each
report names a `GET /api/image-lab/previews/{id}.png`, kept in a bounded store for a while.
"""

import functools
import inspect
import operator
import threading
import time
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    computed_field,
    create_model,
    field_validator,
    model_validator,
)

from app.bench.images import bench
from app.image_store import ImageStore, ImageStoreDep, StoredImage
from app.labs import Lab
from app.request_limits import JSON_ERRORS, StrictJSONRoute, checked, unprocessable
from app.routes.uploads import WORKING_SIDE
from models import image_pipeline as ip
from models.backprop import check_integer
from models.images import MODES, ORIENTATIONS, decode_image, orient

MIN_PREVIEW_SIDE = 32
DEFAULT_PREVIEW_SIDE = 384
# Previews wait here until the page fetches them: a few classes' worth of slider moves.
PREVIEW_IMAGES = 1024
PREVIEW_BYTES = 96 * 1024 * 1024
MIN_AUGMENT_SIDE, MAX_AUGMENT_SIDE = 32, 512
DEFAULT_AUGMENTATIONS = ("crop", "flip_left_right", "brightness", "contrast", "saturation", "hue")
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "BMP": "bmp", "WEBP": "webp"}
SIGNIFICANT = 6  # digits of the statistics sent
LABELS = {
    "channels": {0: "as in the file", 1: "1 (gray)", 3: "3 (RGB)", 4: "4 (RGBA)"},
    "decode_dtype": {
        "uint8": "uint8 (0–255)",
        "uint16": "uint16 (0–65535)",
        "float32": "float32 [0, 1]",
    },
    "method": {m: m for m in ip.RESIZE_METHODS},
    "fit": {"stretch": "stretch", "keep_aspect": "keep aspect", "pad": "keep aspect and pad"},
}
_UNKNOWN_IMAGE = (
    "No uploaded image has this id (uploads are kept for a while only); upload it again."
)
_IMAGE_ERRORS = {**JSON_ERRORS, 404: {"description": "Unknown or expired image_id"}}
_PNG = {200: {"content": {"image/png": {}}, "description": "A PNG image."}}

router = APIRouter(prefix="/api/image-lab", tags=["images lab"], route_class=StrictJSONRoute)


# --- Requests ----------------------------------------------------------------------------------


class ImageSource(BaseModel):
    """Exactly one of `sample` or `image_id`."""

    model_config = ConfigDict(extra="forbid")

    sample: Literal[*ip.SAMPLE_FILES] | None = Field(
        None, description="A generated sample file (`GET /api/image-lab/catalog` lists them)."
    )
    image_id: str | None = Field(
        None, pattern=r"^[0-9a-f]{32}$", description="The id `POST /api/images` returned."
    )

    @model_validator(mode="after")
    def _one_source(self) -> "ImageSource":
        given = [name for name in ("sample", "image_id") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"Give exactly one of sample or image_id. Received: {given}")
        return self


def _integer(name: str, low: int, high: int, description: str) -> Any:
    """An integer field whose bad value is answered in Keras's words (field, value, range)."""
    check = BeforeValidator(lambda value: checked(check_integer, name, value, low, high))
    return Annotated[int, check, Field(ge=low, le=high, description=description)]


PreviewSide = _integer(
    "preview_side",
    MIN_PREVIEW_SIDE,
    WORKING_SIDE,
    "Previews are area-averaged to fit this many pixels a side, never enlarged.",
)
Bins = Annotated[
    Literal[*ip.HISTOGRAM_BINS],
    Field(description="Histogram bins per channel; integer images get whole-number bins."),
]


def _variant(kind: str, name: str, title: str, params: tuple[ip.Param, ...], after=None) -> type:
    """One member of a tagged union, `{"op": name, ...params}`, built from `models/`' parameter
    table: a bad value is answered in Keras's words (field, value, range)."""

    def field_of(param: ip.Param) -> tuple[Any, Any]:
        number = type(param.default)
        annotation = Literal[*param.choices] if param.choices else number
        bounds = {} if param.low is None else {"ge": number(param.low), "le": number(param.high)}
        return annotation, Field(param.default, description=param.doc or None, **bounds)

    def check_of(param: ip.Param):
        def check(cls, value: object) -> object:
            return checked(param.check, name, value)

        return field_validator(param.name, mode="before")(check)

    validators = {f"_check_{p.name}": check_of(p) for p in params}
    if after is not None:
        validators["_check_together"] = model_validator(mode="after")(after)
    camel = "".join(part.title() for part in name.split("_")) + kind
    return create_model(
        camel,
        __config__=ConfigDict(extra="forbid", title=camel),
        __doc__=title,
        __validators__=validators,
        op=(Literal[name], Field(description=title)),
        **{p.name: field_of(p) for p in params},
    )


def _ranges_in_order(name: str):
    def check(self):
        checked(ip.check_augmentation, name, self.model_dump(exclude={"op"}))
        return self

    return check


def _tagged_union(models: list[type]) -> Any:
    return Annotated[functools.reduce(operator.or_, models), Field(discriminator="op")]


Step = _tagged_union(
    [
        _variant("Step", op, f"{o.title}: {o.tf_function}", o.params)
        for op, o in ip.OPERATIONS.items()
    ]
)
AugmentationStep = _tagged_union(
    [
        _variant(
            "Augmentation", name, f"{a.title}: {a.tf_function}", a.params, _ranges_in_order(name)
        )
        for name, a in ip.AUGMENTATIONS.items()
    ]
)


class DecodeOptions(BaseModel):
    """The arguments of `tf.io.decode_image`, and whether to turn the photo upright."""

    model_config = ConfigDict(extra="forbid")

    channels: Literal[*ip.DECODE_CHANNELS] = Field(
        0, description="0: as in the file; 1 gray, 3 RGB (alpha dropped), 4 RGBA."
    )
    dtype: Literal[*ip.DECODE_DTYPES] = Field(
        "uint8", description="uint8, uint16 (8-bit values × 256) or float32 (scaled to [0, 1])."
    )
    apply_exif: bool = Field(
        False,
        description="Turn the pixels upright by the EXIF orientation with tf.image calls "
        "(tf.io.decode_image never does).",
    )


class ImagePipelineRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: ImageSource
    decode: DecodeOptions = Field(default_factory=DecodeOptions)
    steps: list[Step] = Field(
        default_factory=list,
        max_length=ip.MAX_STEPS,
        description=f'At most {ip.MAX_STEPS} steps after the decode, each `{{"op": ..., '
        "params}`; `batch` only last.",
    )
    report: Literal["all", "last"] = Field(
        "all", description="Inspect every stage, or only the last (a live preview)."
    )
    preview_side: PreviewSide = DEFAULT_PREVIEW_SIDE
    bins: Bins = 64


class InspectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: ImageSource
    preview_side: PreviewSide = DEFAULT_PREVIEW_SIDE
    bins: Bins = 64


class AugmentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: ImageSource
    augmentations: list[AugmentationStep] = Field(
        default_factory=lambda: [{"op": name} for name in DEFAULT_AUGMENTATIONS],
        validate_default=True,
        max_length=len(ip.AUGMENTATIONS),
        description="Applied in order to every image; each draws its parameters from its seed.",
    )
    seed: _integer("seed", 0, ip.MAX_SEED, "Image i is seeded (seed, i).") = 0
    count: _integer("count", 1, ip.MAX_AUGMENTED, "Images in the batch.") = 8
    side: _integer(
        "side",
        MIN_AUGMENT_SIDE,
        MAX_AUGMENT_SIDE,
        "The image is area-resized to fit this many pixels a side first.",
    ) = 224
    preview_side: PreviewSide = 224


# --- Responses ---------------------------------------------------------------------------------


class ChannelStats(BaseModel):
    name: str = Field(description="gray, alpha, R, G, B or A.")
    min: float
    max: float
    mean: float
    std: float


class Display(BaseModel):
    kind: Literal["sequential", "diverging"] = Field(
        description="sequential: low → black, high → white; diverging: zero is mid-grey, "
        "low = −high → black."
    )
    low: float
    high: float


class Histogram(BaseModel):
    low: float = Field(description="Left edge of the first bin.")
    high: float = Field(description="Right edge of the last bin.")
    counts: list[list[int]] = Field(description="[channel][bin] counts of finite values.")


class Previewed(BaseModel):
    """A part of an answer drawn as a preview (`_preview` stores it)."""

    preview: str = Field(description="URL of the preview PNG (RGB, or RGBA when x has alpha).")
    preview_width: int
    preview_height: int


class StageReport(Previewed):
    """What a student reads about one stage of a pipeline."""

    index: int = Field(description="0 is the decode; i is steps[i − 1].")
    op: str = Field(description="decode, or the step's op.")
    call: str = Field(description="The TensorFlow expression that made it from the previous x.")
    shape: list[int] = Field(description="(height, width, channels), or (1, …) once batched.")
    dtype: str
    note: str = Field(description="What to notice here; empty if nothing.")
    value_min: float = Field(description="Smallest finite value, all channels.")
    value_max: float = Field(description="Largest finite value, all channels.")
    channels: list[ChannelStats]
    non_finite: int = Field(description="NaN or infinite values (drawn magenta).")
    display: Display = Field(description="How the preview maps values to grey levels.")
    histogram: Histogram
    jpeg_bytes: int | None = Field(None, description="jpeg_quality: the JPEG's size in bytes.")


class WorkingCopy(BaseModel):
    shape: list[int] = Field(description="(height, width, channels) the lab computes on.")
    file_shape: list[int] = Field(description="(height, width, channels) of the full decode.")
    scale: float = Field(description="working width / file width: 1 if not reduced.")
    note: str


class FileInfo(BaseModel):
    """A file's header facts (`models.images.ImageFile`), with what its mode and orientation mean."""

    model_config = ConfigDict(from_attributes=True)

    format: str
    bytes: int
    mode: str = Field(description="Pillow's mode: RGB, RGBA, P, L, LA, 1, I;16, CMYK…")
    width: int = Field(description="As stored, before EXIF orientation.")
    height: int
    bit_depth: int = Field(description="Bits per channel: 1, 8 or 16.")
    frames: int
    has_alpha: bool
    orientation: int = Field(description="EXIF orientation, 1 (upright or none) to 8.")

    @computed_field
    @property
    def mode_meaning(self) -> str:
        return MODES.get(self.mode, self.mode)

    @computed_field
    @property
    def orientation_meaning(self) -> str:
        return ORIENTATIONS[self.orientation][0]


class TensorFlowView(BaseModel):
    call: str
    shape: list[int] = Field(description="What tf.io.decode_image(data) returns.")
    dtype: str
    value_range: list[int] = Field(description="The dtype's range: [0, 255].")
    batch_shape: list[int] = Field(description="(1, height, width, channels) after expand_dims.")
    notes: list[str]


class Upright(Previewed):
    call: str = Field(description="The tf.image call that turns the decoded pixels upright.")
    shape: list[int]


class DescribeResponse(BaseModel):
    source: ImageSource
    file: FileInfo
    tensorflow: TensorFlowView
    working_copy: WorkingCopy
    decoded: StageReport = Field(
        description="tf.io.decode_image(data, expand_animations=False), inspected."
    )
    upright: Upright | None = Field(description="The EXIF orientation applied; null if upright.")
    compute_ms: float


class ImagePipelineResponse(BaseModel):
    source: ImageSource
    working_copy: WorkingCopy
    stages: list[StageReport] = Field(description="Every stage, or only the last (`report`).")
    snippet: str = Field(description="The pipeline as a runnable TensorFlow program.")
    compute_ms: float


class FirstStepGradient(BaseModel):
    input_abs_mean: float
    preactivation_std: float
    loss: float
    grad_norm: float = Field(description="‖∂loss/∂W1‖ of the first layer's kernel.")
    update_ratio: float = Field(
        description="learning rate · ‖∂loss/∂W1‖ / ‖W1‖: near 1 or more, the first step overshoots."
    )


class NormalizationRow(BaseModel):
    mode: str = Field(description="raw, or a normalize step's mode.")
    title: str
    why: str
    stage: StageReport
    gradient: FirstStepGradient


class NormalizationsResponse(BaseModel):
    source: ImageSource
    rows: list[NormalizationRow]
    network: str = Field(description="The tiny network the gradients come from.")
    compute_ms: float


class Draw(BaseModel):
    op: str
    seed: list[int]
    call: str = Field(description="The stateless call, its seed written out: replayable.")
    drawn: dict[str, Any] = Field(description="The random values it drew.")


class AugmentedImage(Previewed):
    index: int
    seed: list[int] = Field(description="(seed, index).")
    draws: list[Draw]
    shape: list[int]


class AugmentResponse(BaseModel):
    source: ImageSource
    input_shape: list[int] = Field(description="The image augmented: resized to fit `side`.")
    images: list[AugmentedImage]
    snippet: str
    compute_ms: float


# --- Images ------------------------------------------------------------------------------------

_previews_lock = threading.Lock()


def get_previews(request: Request) -> ImageStore:
    """The app's store of rendered previews, made on first use."""
    state = request.app.state
    with _previews_lock:
        if not hasattr(state, "image_lab_previews"):
            state.image_lab_previews = ImageStore(PREVIEW_IMAGES, PREVIEW_BYTES)
    return state.image_lab_previews


PreviewsDep = Annotated[ImageStore, Depends(get_previews)]


@functools.cache
def _sample(name: str) -> StoredImage:
    """A sample file decoded as an upload is (they are small: no limit is near)."""
    data = ip.sample_file(name)
    decoded = decode_image(
        data,
        max_bytes=len(data),
        max_pixels=ip.MAX_SIDE**2,
        max_side=ip.MAX_SIDE,
        max_output_side=WORKING_SIDE,
        native_side=WORKING_SIDE,
    )
    return StoredImage(
        decoded.pixels, decoded.format, decoded.original_size, decoded.file, decoded.native
    )


def _load(source: ImageSource, store: ImageStore) -> tuple[StoredImage, str]:
    """The image and the file name a snippet reads it from (never the user's own name)."""
    if source.sample is not None:
        image = _sample(source.sample)
        return image, f"{source.sample}.{EXTENSIONS[image.format]}"
    image = store.get(source.image_id)
    if image is None or image.native is None:
        raise HTTPException(404, _UNKNOWN_IMAGE)
    return image, f"image.{EXTENSIONS[image.format]}"


def _working_copy(image: StoredImage) -> WorkingCopy:
    file = image.file
    scale = image.native.shape[1] / file.width
    reduced = scale < 1
    note = (
        f"The lab computes on a copy reduced to {image.native.shape[1]}×{image.native.shape[0]} "
        f"(at most {WORKING_SIDE} px a side) so that each step takes milliseconds; TensorFlow "
        f"on the file itself gives {file.width}×{file.height}."
        if reduced
        else "The lab computes on the full image."
    )
    return WorkingCopy(
        shape=list(image.native.shape),
        file_shape=[file.height, file.width, file.tf_channels],
        scale=_round(scale),
        note=note,
    )


def _round(value: float) -> float:
    return float(f"{value:.{SIGNIFICANT}g}")


def _preview(pixels: np.ndarray, side: int, previews: ImageStore) -> dict[str, object]:
    """Stores the rendered pixels shrunk to `side`: the `Previewed` fields that show them."""
    small = ip.thumbnail(pixels, side)
    height, width = small.shape[:2]
    preview_id = previews.put(StoredImage(np.ascontiguousarray(small), "PNG", (width, height)))
    return {
        "preview": f"{router.prefix}/previews/{preview_id}.png",
        "preview_width": width,
        "preview_height": height,
    }


def _report(
    index: int,
    op: str,
    done: ip.Applied | ip.Stage,
    asked: InspectRequest | ImagePipelineRequest,
    previews: ImageStore,
) -> StageReport:
    """What a stage holds, inspected with the `bins` and previewed at the `preview_side` asked."""
    x = done.x
    shape = done.shape if isinstance(done, ip.Stage) else x.shape
    seen = ip.inspect(x, asked.bins)
    return StageReport(
        index=index,
        op=op,
        call=done.call,
        shape=list(shape),
        dtype=x.dtype.name,
        note=done.note,
        value_min=_round(min(c.min for c in seen.channels)),
        value_max=_round(max(c.max for c in seen.channels)),
        channels=[
            ChannelStats(
                name=c.name,
                min=_round(c.min),
                max=_round(c.max),
                mean=_round(c.mean),
                std=_round(c.std),
            )
            for c in seen.channels
        ],
        non_finite=seen.non_finite,
        display=Display(
            kind=seen.display.kind, low=_round(seen.display.low), high=_round(seen.display.high)
        ),
        histogram=Histogram(
            low=_round(seen.histogram_low),
            high=_round(seen.histogram_high),
            counts=seen.histograms.tolist(),
        ),
        jpeg_bytes=done.jpeg_bytes,
        **_preview(ip.render(x, seen.display), asked.preview_side, previews),
    )


def _stages(body: ImagePipelineRequest, image: StoredImage) -> list[ip.Stage]:
    """Runs the pipeline; a step that cannot run is a 422 at `steps[i]`."""
    try:
        return ip.run_pipeline(
            image.native,
            image.file,
            [(step.op, step.model_dump(exclude={"op"})) for step in body.steps],
            channels=body.decode.channels,
            dtype=body.decode.dtype,
            apply_exif=body.decode.apply_exif,
        )
    except ip.StepError as exc:
        raise unprocessable(str(exc), ("body", "steps", exc.index - 1)) from exc


def _refusals_are_422(endpoint):
    """A `models/` refusal that no field check foresaw (an image a call cannot take) is a 422 in
    the app's one shape, never a 500."""

    @functools.wraps(endpoint)
    def guarded(*args, **kwargs):
        try:
            return endpoint(*args, **kwargs)
        except ValueError as exc:
            raise unprocessable(str(exc)) from exc

    return guarded


def _png(pixels: np.ndarray, headers: dict[str, str]) -> Response:
    return Response(ip.encode_png(pixels), media_type="image/png", headers=headers)


def _inspection(path: str):
    """Registers an inspection endpoint, `POST path`: its refusals are 422s
    (`_refusals_are_422`); its answer's `compute_ms` (the endpoint leaves it 0) and the
    `Server-Timing` header, set here on a `Response` the endpoint does not take, say how long it
    took."""

    def register(endpoint):
        guarded = _refusals_are_422(endpoint)

        @functools.wraps(endpoint)
        def timed(response: Response, **kwargs):
            start = time.perf_counter()
            answer = guarded(**kwargs)
            answer.compute_ms = round((time.perf_counter() - start) * 1000, 2)
            response.headers["Server-Timing"] = f"compute;dur={answer.compute_ms}"
            return answer

        own = inspect.signature(endpoint)
        reply = inspect.Parameter("response", inspect.Parameter.KEYWORD_ONLY, annotation=Response)
        timed.__signature__ = own.replace(parameters=[*own.parameters.values(), reply])
        return router.post(path, responses=_IMAGE_ERRORS)(timed)

    return register


# --- Endpoints ---------------------------------------------------------------------------------


@router.get("/catalog")
def catalog() -> dict:
    """
    What the lab offers: samples, pipeline steps and their parameters, normalizations,
    augmentations, decode options and limits, for a page to build its controls from.
    """

    def params(ps: tuple[ip.Param, ...]) -> list[dict]:
        return [
            {
                "name": p.name,
                "type": type(p.default).__name__,
                "default": p.default,
                "min": p.low,
                "max": p.high,
                "choices": list(p.choices) or None,
                "doc": p.doc,
            }
            for p in ps
        ]

    return {
        "samples": [
            {
                "name": name,
                "title": title,
                "format": _sample(name).file.format,
                "mode": _sample(name).file.mode,
                "url": f"{router.prefix}/samples/{name}",
            }
            for name, title in ip.SAMPLE_FILES.items()
        ],
        "operations": [
            {"op": op, "title": o.title, "tf_function": o.tf_function, "params": params(o.params)}
            for op, o in ip.OPERATIONS.items()
        ],
        "normalizations": [
            {"mode": mode, "title": n.title, "why": n.why} for mode, n in ip.NORMALIZATIONS.items()
        ],
        "augmentations": [
            {"op": name, "title": a.title, "tf_function": a.tf_function, "params": params(a.params)}
            for name, a in ip.AUGMENTATIONS.items()
        ],
        "default_augmentations": list(DEFAULT_AUGMENTATIONS),
        "decode": {
            "channels": [{"value": v, "label": LABELS["channels"][v]} for v in ip.DECODE_CHANNELS],
            "dtypes": [{"value": v, "label": LABELS["decode_dtype"][v]} for v in ip.DECODE_DTYPES],
        },
        "limits": {
            "working_side": WORKING_SIDE,
            "max_side": ip.MAX_SIDE,
            "max_steps": ip.MAX_STEPS,
            "histogram_bins": list(ip.HISTOGRAM_BINS),
            "preview_side": [MIN_PREVIEW_SIDE, WORKING_SIDE],
            "augment_side": [MIN_AUGMENT_SIDE, MAX_AUGMENT_SIDE],
            "max_augmented": ip.MAX_AUGMENTED,
            "max_seed": ip.MAX_SEED,
        },
    }


@router.get(
    "/samples/{name}",
    responses={
        200: {"content": {"image/*": {}}, "description": "The sample file itself."},
        404: {"description": "No such sample"},
    },
)
def sample(name: str) -> Response:
    """
    A generated sample file, byte for byte what the lab decodes: download it to run a snippet.
    """
    if name not in ip.SAMPLE_FILES:
        raise HTTPException(404, f"No sample is called {name!r}. Samples: {list(ip.SAMPLE_FILES)}")
    fmt = _sample(name).format
    return Response(
        ip.sample_file(name),
        media_type=f"image/{fmt.lower()}",
        headers={"Content-Disposition": f'inline; filename="{name}.{EXTENSIONS[fmt]}"'},
    )


@router.get("/previews/{preview_id}.png", responses={**_PNG, 404: {"description": "Expired"}})
def preview(preview_id: str, previews: PreviewsDep) -> Response:
    """
    A preview a report named. Kept for a while only: fetch it right after the report.
    """
    stored = previews.get(preview_id)
    if stored is None:
        raise HTTPException(404, "This preview has expired; run the request again.")
    return _png(stored.pixels, {"Cache-Control": "private, max-age=3600, immutable"})


@_inspection("/describe")
def describe(body: InspectRequest, store: ImageStoreDep, previews: PreviewsDep) -> DescribeResponse:
    """
    What a file is and what `tf.io.decode_image` makes of it: format, bytes, mode, bit depth,
    frames, EXIF orientation as stored and applied, shape, dtype, value range, batch shape.
    """
    image, _ = _load(body.source, store)
    file = image.file
    decoded = ip.decode(image.native, file)
    upright = None
    if file.orientation != 1:
        turned = np.ascontiguousarray(orient(decoded.x, file.orientation))
        sides = (file.width, file.height) if file.orientation >= 5 else (file.height, file.width)
        upright = Upright(
            call=ORIENTATIONS[file.orientation][1].format(x="x"),
            shape=[*sides, file.tf_channels],
            **_preview(ip.render(turned), body.preview_side, previews),
        )
    shape = [file.height, file.width, file.tf_channels]
    return DescribeResponse(
        source=body.source,
        file=FileInfo.model_validate(file),
        tensorflow=TensorFlowView(
            call="tf.io.decode_image(data)",
            shape=list(file.tf_shape),
            dtype=file.tf_dtype,
            value_range=[0, 255],
            batch_shape=[1, *shape],
            notes=ip.decode_notes(file),
        ),
        working_copy=_working_copy(image),
        decoded=_report(0, "decode", decoded, body, previews),
        upright=upright,
        compute_ms=0.0,
    )


@_inspection("/pipeline")
def pipeline(
    body: ImagePipelineRequest, store: ImageStoreDep, previews: PreviewsDep
) -> ImagePipelineResponse:
    """
    Decode → steps (resize, crop, flip, colour, cast, normalize, batch…), each stage inspected:
    shape, dtype, per-channel min/max/mean/std, histograms, a preview and its TensorFlow call.

    A step that cannot run on what it receives (saturation of a gray image, a box that does
    not fit) is a 422 whose `loc` is `["body", "steps", i]`.
    """
    image, file_name = _load(body.source, store)
    stages = _stages(body, image)
    shown = list(enumerate(stages))
    if body.report == "last":
        shown = shown[-1:]
    return ImagePipelineResponse(
        source=body.source,
        working_copy=_working_copy(image),
        stages=[_report(i, stage.op, stage, body, previews) for i, stage in shown],
        snippet=ip.snippet(stages, file_name),
        compute_ms=0.0,
    )


@router.post("/pipeline.png", responses={**_PNG, **_IMAGE_ERRORS})
@_refusals_are_422
def pipeline_png(body: ImagePipelineRequest, store: ImageStoreDep) -> Response:
    """
    The pipeline's result as a PNG, at the working copy's full size, drawn as the previews are
    (values below zero on a diverging scale). `report`, `preview_side` and `bins` are ignored.
    """
    image, _ = _load(body.source, store)
    last = _stages(body, image)[-1]
    return _png(ip.render(last.x), {"Content-Disposition": 'attachment; filename="pipeline.png"'})


@_inspection("/normalizations")
def normalizations(
    body: InspectRequest, store: ImageStoreDep, previews: PreviewsDep
) -> NormalizationsResponse:
    """
    The image (decoded as RGB uint8) under each normalization side by side, and the size of a
    tiny network's first gradient with each: raw 0–255 inputs make it hundreds of times larger.
    """
    image, _ = _load(body.source, store)
    x = ip.decode(image.native, image.file, channels=3).x
    sizes = ip.first_step_gradients(x)
    done = {"raw": ip.apply(x, "cast", dtype="float32")}
    done |= {mode: ip.normalize(x, mode) for mode in ip.NORMALIZATIONS}
    titles = {"raw": ip.RAW} | ip.NORMALIZATIONS
    rows = [
        NormalizationRow(
            mode=mode,
            title=titles[mode].title,
            why=titles[mode].why,
            stage=_report(1, "cast" if mode == "raw" else "normalize", applied, body, previews),
            gradient=FirstStepGradient(**{k: _round(v) for k, v in vars(sizes[mode]).items()}),
        )
        for mode, applied in done.items()
    ]
    network = (
        f"The image area-resized to {ip.GRADIENT_SIDE}×{ip.GRADIENT_SIDE}×3, flattened → "
        f"Dense({ip.GRADIENT_HIDDEN}, ReLU) → Dense({ip.GRADIENT_CLASSES}); Glorot-uniform "
        f"weights (seed 0), cross-entropy against class 0, SGD at learning rate "
        f"{ip.GRADIENT_LEARNING_RATE}."
    )
    return NormalizationsResponse(source=body.source, rows=rows, network=network, compute_ms=0.0)


@_inspection("/augment")
def augment(body: AugmentRequest, store: ImageStoreDep, previews: PreviewsDep) -> AugmentResponse:
    """
    A batch of random augmentations of one image with `tf.image.stateless_random_*`: the same
    seed gives the same batch, and each image lists the values its augmentations drew.
    """
    image, file_name = _load(body.source, store)
    x = ip.decode(image.native, image.file, channels=3, dtype="float32").x
    size = ip.fit_within(*x.shape[:2], body.side)
    x = ip.apply(x, "resize", height=size[0], width=size[1], method="area").x
    chosen = [(a.op, a.model_dump(exclude={"op"})) for a in body.augmentations]
    batch = ip.augment(x, chosen, seed=body.seed, count=body.count)
    images = []
    for i, item in enumerate(batch):
        draws = [Draw(op=d.op, seed=list(d.seed), call=d.call, drawn=d.drawn) for d in item.draws]
        images.append(
            AugmentedImage(
                index=i,
                seed=list(item.seed),
                draws=draws,
                shape=list(item.x.shape),
                **_preview(ip.render(item.x), body.preview_side, previews),
            )
        )
    snippet = ip.augment_snippet(
        chosen, seed=body.seed, count=body.count, size=size, file_name=file_name
    )
    return AugmentResponse(
        source=body.source,
        input_shape=list(x.shape),
        images=images,
        snippet=snippet,
        compute_ms=0.0,
    )


LAB = Lab(
    "images",
    "Working with images",
    "Loading, formats, normalization and manipulation.",
    60,
    short="Images",
    router=router,
    bench=bench,
    # The selects whose values are one API enum; samples, steps and augmentations (tagged
    # unions and optional fields) come from GET /api/image-lab/catalog.
    choices={
        "method": list(LABELS["method"].items()),
        "fit": list(LABELS["fit"].items()),
        "dtype": [(d, d) for d in ip.CAST_DTYPES],
        "mode": [(mode, n.title) for mode, n in ip.NORMALIZATIONS.items()],
    },
    ready=True,
)
