"""Convolution and pooling: kernels on sample images or uploads, 1-D signals, a small CNN pipeline.

Its JSON endpoints run filter banks and the pipeline with TensorFlow, and describe activations and
1-D signals; images come from `POST /api/images` (app/routes/uploads.py).
"""

import math
import time
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from app.bench.convolution import bench
from app.image_store import ImageStore, ImageStoreDep
from app.labs import Lab
from app.request_limits import JSON_ERRORS, StrictJSONRoute, checked, unprocessable
from models import convolution as conv
from models.backprop import check_number
from models.samples import SAMPLES, make_sample

MAX_INLINE_SIDE = 64
MAX_WORKING_SIDE = 512
PIPELINE_MAX_SIDE = 64
# The largest valid request (64×64×3 inline, 16 kernels of 9×9) is about 200 KB of JSON.
MAX_JSON_BODY = 1024 * 1024
DECIMALS = 4
KERNEL_DECIMALS = 6  # weights as typed, e.g. 1/9 for a box blur
COLORS = ("gray", "rgb")
LABELS = {
    "color": {"gray": "grayscale (1 channel)", "rgb": "RGB (3 channels)"},
    "padding": {"SAME": "SAME", "VALID": "VALID"},
    "mode": {
        "correlation": "correlation (tf.nn.conv2d)",
        "convolution": "convolution (kernel flipped)",
    },
    "pool": {"max": "max", "avg": "average"},
}

router = APIRouter(
    prefix="/api", tags=["convolution"], route_class=StrictJSONRoute.capped(MAX_JSON_BODY)
)


def _in_range(name: str, limit: float) -> BeforeValidator:
    """Checks each number of nested lists, named as a page lays it out (`kernels[0][1][2]`).

    A student who types 1e9 in a cell reads which cell, what it got and the allowed range;
    pydantic then checks the shapes.
    """

    def check(value: object) -> object:
        _check_numbers(name, value, limit)
        return value

    return BeforeValidator(check)


def _check_numbers(name: str, value: object, limit: float) -> None:
    for i, item in enumerate(value if isinstance(value, list) else ()):
        if isinstance(item, list):
            _check_numbers(f"{name}[{i}]", item, limit)
        else:
            checked(check_number, f"{name}[{i}]", item, -limit, limit)


Pixel = Annotated[float, Field(allow_inf_nan=False, ge=-conv.MAX_ABS_VALUE, le=conv.MAX_ABS_VALUE)]
Weight = Annotated[
    float, Field(allow_inf_nan=False, ge=-conv.MAX_ABS_WEIGHT, le=conv.MAX_ABS_WEIGHT)
]
Row = Annotated[list[Pixel], Field(min_length=1, max_length=MAX_INLINE_SIDE)]
Array2D = Annotated[list[Row], Field(min_length=1, max_length=MAX_INLINE_SIDE)]
ColorPixel = Annotated[list[Pixel], Field(min_length=1, max_length=3)]
ColorRow = Annotated[list[ColorPixel], Field(min_length=1, max_length=MAX_INLINE_SIDE)]
Array3D = Annotated[list[ColorRow], Field(min_length=1, max_length=MAX_INLINE_SIDE)]
KernelRow = Annotated[list[Weight], Field(min_length=1, max_length=conv.MAX_KERNEL_SIDE)]
Kernel = Annotated[list[KernelRow], Field(min_length=1, max_length=conv.MAX_KERNEL_SIDE)]
Kernels = Annotated[
    list[Kernel],
    Field(min_length=1, max_length=conv.MAX_KERNELS),
    _in_range("kernels", conv.MAX_ABS_WEIGHT),
]
Padding = Literal[*conv.PADDINGS]
Mode = Literal[*conv.MODES]
Stride = Annotated[int, Field(ge=1, le=conv.MAX_STRIDE)]


class ImageInput(BaseModel):
    """Exactly one of `sample`, `image_id` or `array`."""

    model_config = ConfigDict(extra="forbid")

    sample: Literal[*SAMPLES] | None = Field(None, description="A built-in sample image.")
    image_id: str | None = Field(
        None, pattern=r"^[0-9a-f]{32}$", description="The id `POST /api/images` returned."
    )
    array: Annotated[Array2D | Array3D | None, _in_range("input.array", conv.MAX_ABS_VALUE)] = (
        Field(
            None,
            description=f"Inline (height, width) or (height, width, 1 or 3) values, at most "
            f"{MAX_INLINE_SIDE}×{MAX_INLINE_SIDE}.",
        )
    )
    color: Literal[*COLORS] = Field(
        "gray", description="`gray` turns 3 channels into 1 (luminance); `rgb` keeps them."
    )
    size: int = Field(
        64,
        ge=8,
        le=MAX_WORKING_SIDE,
        description="Side of a sample, or the largest side an upload is shrunk to; arrays keep "
        "their size.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> "ImageInput":
        given = [
            name for name in ("sample", "image_id", "array") if getattr(self, name) is not None
        ]
        if len(given) != 1:
            raise ValueError(f"Give exactly one of sample, image_id or array. Received: {given}")
        if self.array is not None:
            try:
                values = np.array(self.array, dtype=np.float32)
            except ValueError as exc:
                raise ValueError("array rows must all have the same length") from exc
            if values.ndim == 3 and values.shape[-1] == 2:
                raise ValueError(f"array must have 1 or 3 channels. Received: shape={values.shape}")
        return self


class FilterBank(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: ImageInput
    kernels: Kernels = Field(
        description=f"1 to {conv.MAX_KERNELS} kernels, all the same (height, width), at most "
        f"{conv.MAX_KERNEL_SIDE} a side."
    )
    stride: Stride = 1
    padding: Padding = "SAME"
    mode: Mode = Field(
        "correlation",
        description="`correlation` is what tf.nn.conv2d computes; `convolution` flips each "
        "kernel by 180° first.",
    )

    @model_validator(mode="after")
    def _same_shape(self) -> "FilterBank":
        shapes = {(len(k), len(row)) for k in self.kernels for row in k}
        if len(shapes) != 1 or any(len({len(row) for row in k}) != 1 for k in self.kernels):
            raise ValueError(
                f"Kernels must be rectangular and all the same size. Received sizes: "
                f"{sorted(shapes)}"
            )
        return self


class ConvolveRequest(FilterBank):
    display_size: int = Field(
        128,
        ge=8,
        le=MAX_WORKING_SIDE,
        description="Maps larger than this are averaged down for the answer (see "
        "`map_factor`); the computation always runs at full size.",
    )


class ConvolveResponse(BaseModel):
    input_shape: list[int] = Field(description="(batch, height, width, channels) of the input.")
    filter_shape: list[int] = Field(description="(kernel_h, kernel_w, in_channels, kernels).")
    output_shape: list[int] = Field(description="(batch, out_height, out_width, kernels).")
    stride: int
    padding: str
    mode: str
    pad_top: int = Field(description="Zero rows TensorFlow adds above the input (SAME).")
    pad_left: int = Field(description="Zero columns TensorFlow adds left of the input (SAME).")
    applied_kernels: list[list[list[float]]] = Field(
        description="The weights as slid over the input: flipped in convolution mode."
    )
    image: list[list[float]] = Field(
        description="[batch] then the input's values row by row, channels innermost, as drawn "
        "(image_height × image_width × channels)."
    )
    image_height: int
    image_width: int
    image_factor: int = Field(description="1: `image` is exact; n: each value averages n×n.")
    # Flat rows, not nested lists: millions of small lists would wake Python's full garbage
    # collection, which costs over 100 ms once TensorFlow is loaded.
    feature_maps: list[list[list[float]]] = Field(
        description="[batch][kernel] then the map's values row by row (map_height × map_width)."
    )
    map_height: int
    map_width: int
    map_factor: int = Field(description="1: `feature_maps` are exact; n: each averages n×n.")
    max_abs: list[float] = Field(description="Largest |value| of each full-size feature map.")
    compute_ms: float = Field(description="Server time spent on the input and the convolution.")


class PipelineRequest(FilterBank):
    activation: Literal[*conv.ACTIVATIONS] = "relu"
    pool: Literal[*conv.POOLS] = "max"
    pool_window: int = Field(2, ge=1, le=conv.MAX_POOL_WINDOW)
    pool_stride: Stride = 2
    units: int = Field(3, ge=1, le=10, description="Outputs of the (untrained) dense layer.")


class Stage(BaseModel):
    name: str
    shape: list[int]
    maps: list[list[float]] | None = Field(
        None,
        description="[channel] then values row by row (shape[1] × shape[2]) of the first batch "
        "item, for image-like stages.",
    )
    values: list[float] | None = Field(None, description="The first item's vector, if flat.")


class PipelineResponse(BaseModel):
    stages: list[Stage]
    pool_argmax: list[list[int]] | None = Field(
        description="[channel] then, row by row, the index y * width + x of the activated value "
        "each max-pooled output came from (first batch item); null for average pooling."
    )
    compute_ms: float


class ActivationCurve(BaseModel):
    name: str
    y: list[float]
    dy: list[float]


class ActivationsResponse(BaseModel):
    x: list[float]
    curves: list[ActivationCurve]


class SignalsResponse(BaseModel):
    t: list[float]
    f: list[float]
    g: list[float]
    output: list[float]
    shifts: list[int]
    kernel_at: list[list[float]]
    products: list[list[float]]


@router.post(
    "/convolve",
    responses={**JSON_ERRORS, 404: {"description": "Unknown or expired image_id"}},
)
def convolve(body: ConvolveRequest, store: ImageStoreDep, response: Response) -> ConvolveResponse:
    """
    Apply a bank of 2-D kernels to an image with `tf.nn.conv2d` and answer the feature maps.

    The input is a built-in sample, an uploaded image's id or an inline array of at most 64×64.
    A 422 names the problem: a NaN weight, kernels of different sizes, a stride larger than the
    image, a kernel that does not fit it with VALID padding.
    """
    start = time.perf_counter()
    images = _load_input(body.input, store)
    kernels = np.array(body.kernels, np.float32)
    maps = _run(conv.conv2d, images, kernels, body.stride, body.padding, body.mode)
    pad_top, pad_left = conv.padding_offsets(
        *images.shape[1:3], *kernels.shape[1:], body.stride, body.padding
    )
    image_factor = math.ceil(max(images.shape[1:3]) / body.display_size)
    map_factor = math.ceil(max(maps.shape[1:3]) / body.display_size)
    shown_image = conv.downsample(images, image_factor)
    shown_maps = np.transpose(conv.downsample(maps, map_factor), (0, 3, 1, 2))
    applied = conv.flip_kernel(kernels) if body.mode == "convolution" else kernels
    answer = ConvolveResponse(
        input_shape=list(images.shape),
        filter_shape=[*kernels.shape[1:], images.shape[-1], len(kernels)],
        output_shape=list(maps.shape),
        **body.model_dump(include={"stride", "padding", "mode"}),
        pad_top=pad_top,
        pad_left=pad_left,
        applied_kernels=_rounded(applied, KERNEL_DECIMALS),
        image=[_rounded(item.ravel()) for item in shown_image],
        image_height=shown_image.shape[1],
        image_width=shown_image.shape[2],
        image_factor=image_factor,
        feature_maps=[[_rounded(m.ravel()) for m in item] for item in shown_maps],
        map_height=shown_maps.shape[2],
        map_width=shown_maps.shape[3],
        map_factor=map_factor,
        max_abs=_rounded(conv.max_abs(maps)),
        compute_ms=0.0,
    )
    answer.compute_ms = round((time.perf_counter() - start) * 1000, 2)
    response.headers["Server-Timing"] = f"compute;dur={answer.compute_ms}"
    return answer


@router.post(
    "/convolution/pipeline",
    responses={**JSON_ERRORS, 404: {"description": "Unknown or expired image_id"}},
)
def pipeline(body: PipelineRequest, store: ImageStoreDep) -> PipelineResponse:
    """
    The course's simple CNN on one image: conv2d → activation → pooling → flatten → dense.

    Images are shrunk to at most 64 px a side so every stage can be drawn.
    """
    start = time.perf_counter()
    images = conv.fit_size(_load_input(body.input, store), PIPELINE_MAX_SIDE)
    kernels = np.array(body.kernels, np.float32)
    # The request's settings are the pipeline's keyword arguments.
    out = _run(conv.simple_cnn, images, kernels, **body.model_dump(exclude={"input", "kernels"}))

    def stage(name: str, x: np.ndarray, flat: bool = False) -> Stage:
        if flat:
            return Stage(name=name, shape=list(x.shape), values=_rounded(x[0]))
        maps = [_rounded(m.ravel()) for m in np.transpose(x[0], (2, 0, 1))]
        return Stage(name=name, shape=list(x.shape), maps=maps)

    stages = [
        stage("input", images),
        stage("conv2d", out.conv),
        stage(body.activation, out.activated),
        stage(f"{body.pool}_pool", out.pooled),
        stage("flatten", out.flat, flat=True),
        stage("dense", out.logits, flat=True),
        stage("softmax", out.probabilities, flat=True),
    ]
    argmax = None
    if out.argmax is not None:
        argmax = [m.ravel().tolist() for m in np.transpose(out.argmax[0], (2, 0, 1))]
    compute_ms = round((time.perf_counter() - start) * 1000, 2)
    return PipelineResponse(stages=stages, pool_argmax=argmax, compute_ms=compute_ms)


@router.get("/convolution/activations")
def activations(
    x_min: Annotated[float, Query(ge=-50, le=50, allow_inf_nan=False)] = -5.0,
    x_max: Annotated[float, Query(ge=-50, le=50, allow_inf_nan=False)] = 5.0,
    points: Annotated[int, Query(ge=3, le=2001)] = 201,
) -> ActivationsResponse:
    """
    Every activation function and its derivative (by tf.GradientTape) on [x_min, x_max].
    """
    if x_min >= x_max:
        raise unprocessable(
            f"x_min must be below x_max. Received: {x_min=}, {x_max=}", ("query", "x_max")
        )
    x = np.linspace(x_min, x_max, points, dtype=np.float32)
    curves = conv.activation_curves(x)
    return ActivationsResponse(
        x=_rounded(x),
        curves=[
            ActivationCurve(name=name, y=_rounded(y), dy=_rounded(dy))
            for name, (y, dy) in curves.items()
        ],
    )


@router.get("/convolution/signals")
def signals(
    signal: Literal[*conv.SIGNALS] = "box",
    kernel: Literal[*conv.SIGNALS] = "box",
    points: Annotated[int, Query(ge=21, le=1001)] = 241,
    frames: Annotated[int, Query(ge=2, le=241)] = 61,
) -> SignalsResponse:
    """
    The 1-D convolution (f * g)(t) of two signals, and the kernel slid to each animation frame.
    """
    s = _run(conv.convolve_signals, signal, kernel, points, frames)
    return SignalsResponse(
        t=_rounded(s.t),
        f=_rounded(s.f),
        g=_rounded(s.g),
        output=_rounded(s.output),
        shifts=s.shifts.tolist(),
        kernel_at=_rounded(s.kernel_at),
        products=_rounded(s.products),
    )


@router.get("/convolution/catalog")
def catalog() -> dict:
    """
    What the lab offers: samples, kernel presets (3×3 and 5×5), activations, signals, limits.
    """
    return {
        "samples": [
            {"name": name, "title": title, "shape": list(make_sample(name, 64).shape)}
            for name, title in SAMPLES.items()
        ],
        "kernels": [
            {
                "name": name,
                "title": title,
                "weights": {
                    size: _rounded(conv.kernel_preset(name, size), KERNEL_DECIMALS)
                    for size in conv.KERNEL_SIZES
                },
            }
            for name, title in conv.KERNEL_PRESETS.items()
        ],
        "activations": list(conv.ACTIVATIONS),
        "signals": [{"name": name, "title": title} for name, title in conv.SIGNALS.items()],
        "limits": {
            "max_kernels": conv.MAX_KERNELS,
            "max_kernel_side": conv.MAX_KERNEL_SIDE,
            "max_stride": conv.MAX_STRIDE,
            "max_pool_window": conv.MAX_POOL_WINDOW,
            "max_inline_side": MAX_INLINE_SIDE,
            "max_working_side": MAX_WORKING_SIDE,
        },
    }


def _load_input(spec: ImageInput, store: ImageStore) -> np.ndarray:
    """float32 (batch, height, width, channels) in the requested colour."""
    if spec.sample is not None:
        images = make_sample(spec.sample, spec.size)
    elif spec.image_id is not None:
        stored = store.get(spec.image_id)
        if stored is None:
            raise HTTPException(
                404,
                "No uploaded image has this id (uploads are kept for a while only); upload it again.",
            )
        images = conv.fit_size(conv.as_batch(stored.pixels.astype(np.float32) / 255.0), spec.size)
    else:
        images = conv.as_batch(np.array(spec.array, np.float32))
    return conv.to_grayscale(images) if spec.color == "gray" else images


def _run(fn, *args, **kwargs):
    """Calls a models/ function, turning its argument errors into 422s with the same message."""
    try:
        return fn(*args, **kwargs)
    except ValueError as exc:
        raise unprocessable(str(exc)) from exc


def _rounded(x: np.ndarray, decimals: int = DECIMALS) -> list:
    return np.round(x.astype(np.float64), decimals).tolist()


LAB = Lab(
    "convolution",
    "Convolution and pooling",
    "Kernels, edge detection, activations, pooling.",
    50,
    short="Convolution",
    router=router,
    bench=bench,
    choices={
        field: [(value, LABELS[field][value]) for value in values]
        for field, values in (
            ("color", COLORS),
            ("padding", conv.PADDINGS),
            ("mode", conv.MODES),
            ("pool", conv.POOLS),
        )
    },
)
