"""Gradient descent: loss surfaces, learning rates side by side, a sweep, optimizers.

Its JSON endpoints descend a surface with several learning rates at once, or sweep a range of
them, each in one compiled call.
"""

import time
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from app.bench.descent import bench
from app.labs import Lab
from app.request_limits import JSON_ERRORS, StrictJSONRoute, checked
from models import descent
from models.backprop import check_integer, check_number

LR_LOW, LR_HIGH = descent.LR_RANGE
SURFACE_LABELS = {
    "quadratic": "quadratic bowl",
    "linear_regression": "linear regression (MSE)",
    "nonconvex": "non-convex, local minima",
}
OPTIMIZER_LABELS = {
    "sgd": "plain gradient descent (SGD)",
    "momentum": "momentum 0.9",
    "rmsprop": "RMSprop",
    "adam": "Adam",
}

router = APIRouter(prefix="/api/descent", tags=["descent"], route_class=StrictJSONRoute)


class SurfaceRequest(BaseModel):
    """A loss surface over two weights, a start point and how to descend it."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    surface: Literal[*descent.SURFACES] = Field(
        "quadratic",
        description="quadratic: ½(λ1·u² + λ2·v²) on turned axes; linear_regression: mean squared "
        "error of a line (w = slope, intercept) on 20 seeded points; nonconvex: a bowl with three "
        "Gaussian dips.",
    )
    curvature: float = Field(1.0, description="Quadratic only: λ1, the largest eigenvalue.")
    condition: float = Field(10.0, description="Quadratic only: the condition number λ1/λ2.")
    angle: float = Field(30.0, description="Quadratic only: turn of the steep axis, in degrees.")
    start: list[float] = Field(
        description="The start point (w0, w1), inside the surface's plotted window."
    )
    steps: int = Field(100, description=f"Steps per run, 1 to {descent.MAX_STEPS}.")
    optimizer: Literal[*descent.OPTIMIZERS] = Field(
        "sgd", description="sgd, momentum (0.9), rmsprop or adam, with Keras's defaults."
    )

    @field_validator("curvature", "condition", "angle", mode="before")
    @classmethod
    def _setting_in_range(cls, value: object, info: ValidationInfo) -> float:
        name = info.field_name
        return checked(check_number, name, value, *descent.SURFACE_RANGES[name])

    @field_validator("steps", mode="before")
    @classmethod
    def _steps_in_range(cls, value: object) -> int:
        return checked(check_integer, "steps", value, 1, descent.MAX_STEPS)

    @field_validator("start", mode="before")
    @classmethod
    def _start_is_a_point(cls, value: object) -> list[float]:
        if not isinstance(value, list) or len(value) != 2:
            raise PydanticCustomError(
                "not_a_point",
                "start must be two numbers (w0, w1). Received: {value}",
                {"value": repr(value)[:40]},
            )
        return [checked(check_number, f"start[{i}]", v, -1e3, 1e3) for i, v in enumerate(value)]

    @model_validator(mode="after")
    def _start_in_window(self) -> "SurfaceRequest":
        window = descent.SURFACES[self.surface].window
        for i, v in enumerate(self.start):
            checked(check_number, f"start[{i}]", v, *window[i])
        return self

    def params(self) -> np.ndarray:
        return descent.check_surface(self.surface, self.curvature, self.condition, self.angle)


def _rates(value: object) -> list[float]:
    if not isinstance(value, list) or not 1 <= len(value) <= descent.MAX_RATES:
        count = len(value) if isinstance(value, list) else repr(value)[:40]
        raise PydanticCustomError(
            "rate_count",
            "learning_rates must be a list of 1 to {n} numbers. Received: {count}",
            {"n": descent.MAX_RATES, "count": count},
        )
    return [
        checked(check_number, f"learning_rates[{i}]", v, LR_LOW, LR_HIGH)
        for i, v in enumerate(value)
    ]


class DescentRequest(SurfaceRequest):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "surface": "quadratic",
                    "start": [-3.2, 2.4],
                    "learning_rates": [0.02, 0.2, 1.0, 2.1],
                }
            ]
        }
    )

    learning_rates: list[float] = Field(
        description=f"1 to {descent.MAX_RATES} learning rates in [{LR_LOW:g}, {LR_HIGH:g}], "
        "one run each."
    )
    include_surface: bool = Field(True, description="Also send the contour grid of the surface.")

    @field_validator("learning_rates", mode="before")
    @classmethod
    def _rates_in_range(cls, value: object) -> list[float]:
        return _rates(value)


class SweepRequest(SurfaceRequest):
    lr_min: float = Field(description=f"The smallest rate, in [{LR_LOW:g}, {LR_HIGH:g}].")
    lr_max: float = Field(description="The largest rate, above lr_min.")
    count: int = Field(24, description=f"Rates, log-spaced, 2 to {descent.MAX_RATES}.")

    @field_validator("lr_min", "lr_max", mode="before")
    @classmethod
    def _lr_in_range(cls, value: object, info: ValidationInfo) -> float:
        return checked(check_number, info.field_name, value, LR_LOW, LR_HIGH)

    @field_validator("count", mode="before")
    @classmethod
    def _count_in_range(cls, value: object) -> int:
        return checked(check_integer, "count", value, 2, descent.MAX_RATES)

    @model_validator(mode="after")
    def _ordered(self) -> "SweepRequest":
        if not self.lr_min < self.lr_max:
            raise PydanticCustomError(
                "range_order",
                "lr_max must be above lr_min. Received: lr_min={low}, lr_max={high}",
                {"low": self.lr_min, "high": self.lr_max},
            )
        return self


class Run(BaseModel):
    lr: float
    path: list[list[float] | None] = Field(description="steps + 1 points; null after divergence.")
    loss: list[float | None] = Field(description="The loss at each point; null after divergence.")
    grad: list[list[float] | None] = Field(description="∇loss at each point (tf.GradientTape).")
    diverged_at: int | None = Field(description="The step at which the run diverged, or null.")
    final_loss: float | None = Field(description="The loss after the last step, or null.")


class DescentResponse(BaseModel):
    surface: dict[str, Any] | None = Field(
        description="Grid w0, w1, loss (rows at w1), minimum, eigenvalues, critical_lr = 2/λmax."
    )
    runs: list[Run]
    divergence_factor: float = Field(description="A run diverges above this × its start loss.")
    compute_ms: float


class SweepResponse(BaseModel):
    learning_rates: list[float]
    final_loss: list[float | None]
    diverged_at: list[int | None]
    critical_lr: float
    compute_ms: float


@router.post(
    "", response_model=DescentResponse, responses=JSON_ERRORS, summary="Descend, several rates"
)
async def run_descent(body: DescentRequest) -> JSONResponse:
    """
    Run gradient descent from `start` once per learning rate, all runs in one compiled call; a run
    whose loss turns non-finite or exceeds `divergence_factor` × its start loss stops there.
    """
    start = time.perf_counter()
    params = body.params()
    runs = await run_in_threadpool(
        descent.descend,
        body.surface,
        params,
        body.start,
        body.learning_rates,
        body.steps,
        body.optimizer,
    )
    surface = (
        await run_in_threadpool(descent.describe, body.surface, params)
        if body.include_surface
        else None
    )
    # Built as plain JSON: validating up to 32 × 2001 points through the model would cost more
    # than computing them.
    return JSONResponse(
        {
            "surface": surface,
            "runs": runs,
            "divergence_factor": descent.DIVERGENCE_FACTOR,
            "compute_ms": round((time.perf_counter() - start) * 1000, 2),
        }
    )


@router.post(
    "/sweep", response_model=SweepResponse, responses=JSON_ERRORS, summary="Learning-rate sweep"
)
async def run_sweep(body: SweepRequest) -> JSONResponse:
    """
    The final loss after `steps` steps for `count` log-spaced learning rates from lr_min to lr_max,
    all in one compiled call: the good band, and the cliff where descent overshoots.
    """
    start = time.perf_counter()
    params = body.params()
    rates = np.geomspace(body.lr_min, body.lr_max, body.count).tolist()
    runs = await run_in_threadpool(
        descent.descend, body.surface, params, body.start, rates, body.steps, body.optimizer
    )
    critical = (await run_in_threadpool(descent.describe, body.surface, params))["critical_lr"]
    return JSONResponse(
        {
            **descent.sweep(runs),
            "critical_lr": critical,
            "compute_ms": round((time.perf_counter() - start) * 1000, 2),
        }
    )


def warm_up(runtime) -> None:
    """Compiles every surface and optimizer in the background, one job each (so that a shutdown
    drops the rest): a first visit then answers in milliseconds."""
    for kind in descent.SURFACES:
        for optimizer in descent.OPTIMIZERS:
            runtime.compiler.submit(descent.warm_up, kind, optimizer)


LAB = Lab(
    "descent",
    "Gradient descent",
    "Learning rates too small, good and overshooting.",
    20,
    short="Descent",
    router=router,
    bench=bench,
    warm_up=warm_up,
    choices={
        "surface": [(s, SURFACE_LABELS[s]) for s in descent.SURFACES],
        "optimizer": [(o, OPTIMIZER_LABELS[o]) for o in descent.OPTIMIZERS],
    },
)
