"""Backpropagation: the chain rule through a chain of sigmoid neurons, one factor at a time.

Its JSON endpoints analyse one chain three ways (chain rule, tf.GradientTape, finite differences)
and run gradient descent on it.
"""

import math
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from app.labs import Lab
from app.request_limits import JSON_ERRORS, StrictJSONRoute, checked
from models import backprop

X_LOW, X_HIGH = backprop.RANGES["x"]
W_LOW, W_HIGH = backprop.RANGES["w"]
LR_LOW, LR_HIGH = backprop.RANGES["lr"]
ACTIVATION_LABELS = {"sigmoid": "sigmoid σ", "tanh": "tanh", "relu": "relu"}
LOSS_LABELS = {"cross_entropy": "cross-entropy", "squared_error": "squared error (L − y)²"}

router = APIRouter(prefix="/api/backprop", tags=["backprop"], route_class=StrictJSONRoute)


class ChainRequest(BaseModel):
    """One chain x → L1 → … → Ln → loss, and what to compare it with."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={"examples": [{"x": 1.0, "y": 1.0, "w": [0.5, -1.0, 2.0]}]},
    )

    x: float = Field(ge=X_LOW, le=X_HIGH, description="The input.")
    y: float = Field(ge=0.0, le=1.0, description="The expected output, y_expected.")
    w: list[float] = Field(
        min_length=1,
        max_length=backprop.MAX_DEPTH,
        description=f"Weights w1..wn, one per layer: the depth is len(w), 1 to "
        f"{backprop.MAX_DEPTH}. Each in [{W_LOW:g}, {W_HIGH:g}].",
    )
    b: list[float] | None = Field(
        None,
        description="Biases b1..bn, one per layer like w, or null for neurons without bias.",
    )
    activation: Literal[*backprop.ACTIVATIONS] = Field(
        "sigmoid", description="The hidden layers' activation; the output neuron stays sigmoid."
    )
    loss: Literal[*backprop.LOSSES] = Field(
        "cross_entropy",
        description="cross_entropy: −[y·log L + (1−y)·log(1−L)]; squared_error: (L − y)².",
    )

    @field_validator("x", "y", "w", "b", mode="before")
    @classmethod
    def _in_range(cls, value: object, info: ValidationInfo) -> object:
        name = info.field_name
        if name == "b" and value is None:
            return None
        if name in ("w", "b"):
            return checked(backprop.check_vector, name, value, W_LOW, W_HIGH)
        return checked(backprop.check_number, name, value, *backprop.RANGES[name])

    @field_validator("b")
    @classmethod
    def _one_bias_per_layer(cls, b: list[float] | None, info: ValidationInfo) -> list[float] | None:
        w = info.data.get("w")
        if b is not None and w is not None and len(b) != len(w):
            raise PydanticCustomError(
                "length_mismatch",
                "b must hold one bias per layer, {depth} like w. Received: len(b)={count}",
                {"depth": len(w), "count": len(b)},
            )
        return b


class TrainRequest(ChainRequest):
    """A chain and the gradient-descent run to apply to it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"x": 1.0, "y": 1.0, "w": [0.5, -1.0, 2.0], "lr": 0.5, "steps": 20}]
        }
    )

    lr: float = Field(0.5, ge=LR_LOW, le=LR_HIGH, description="The learning rate.")
    steps: int = Field(1, ge=1, le=backprop.MAX_STEPS, description="How many steps to take.")

    @field_validator("lr", "steps", mode="before")
    @classmethod
    def _run_in_range(cls, value: object, info: ValidationInfo) -> float | int:
        if info.field_name == "lr":
            return checked(backprop.check_number, "lr", value, LR_LOW, LR_HIGH)
        return checked(backprop.check_integer, "steps", value, 1, backprop.MAX_STEPS)


class Layer(BaseModel):
    z: float = Field(description="Pre-activation z_i = w_i·L_(i−1) + b_i.")
    L: float = Field(description="Output L_i = act(z_i).")
    dL: float = Field(description="L_i' = act'(z_i), the activation's slope.")


class Gradient(BaseModel):
    param: str = Field(description="w1..wn, then b1..bn when the chain has biases.")
    chain: float = Field(description="The chain-rule product, computed factor by factor.")
    tape: float = Field(description="What tf.GradientTape computes.")
    finite_difference: float = Field(description="Central difference (loss(θ+h) − loss(θ−h))/2h.")
    agree: bool = Field(description="All three agree to `tolerance` (relative above 1).")


class ChainResponse(BaseModel):
    forward: dict[str, float] = Field(
        description="The forward values L1..Ln and the loss.",
        examples=[{"L1": 0.6225, "L2": 0.3492, "L3": 0.6678, "loss": 0.4037}],
    )
    layers: list[Layer]
    loss_derivative: float | None = Field(
        description="loss' = ∂loss/∂Ln; null where it overflows float64 (a saturated output)."
    )
    deltas: list[float] = Field(
        description="δ_i = ∂loss/∂z_i, computed once per layer and reused below it: "
        "δn = loss'·Ln', δi = δ(i+1)·w(i+1)·Li'."
    )
    gradients: list[Gradient]
    fd_step: float = Field(description="The finite-difference step h.")
    tolerance: float = Field(description="How closely the three gradients must agree.")


class TrainResponse(BaseModel):
    loss: list[float] = Field(description="The loss before each step and after the last.")
    w: list[list[float]] = Field(description="The weights before each step and after the last.")
    b: list[list[float]] | None = Field(description="The biases likewise, or null.")
    steps_done: int
    stopped: str | None = Field(description="Why the run stopped before `steps`, or null.")


@router.post(
    "", response_model=ChainResponse, responses=JSON_ERRORS, summary="Analyse one chain three ways"
)
def analyse_chain(chain: ChainRequest) -> dict:
    """
    Run the chain forward, then backward by the chain rule, and check every gradient against
    tf.GradientTape and finite differences (all in float64).
    """
    result = backprop.backprop(**chain.model_dump())
    if not math.isfinite(result["loss_derivative"]):
        result["loss_derivative"] = None
    return result


@router.post(
    "/train", response_model=TrainResponse, responses=JSON_ERRORS, summary="Gradient-descent steps"
)
def train_chain(run: TrainRequest) -> dict:
    """
    Take up to `steps` gradient-descent steps; stops early, and says why, rather than leave the
    allowed range or produce a non-finite loss.
    """
    return backprop.train(**run.model_dump())


LAB = Lab(
    "backprop",
    "Backpropagation",
    "The chain rule through three sigmoid neurons, step by step.",
    40,
    short="Backprop",
    router=router,
    choices={
        "activation": [(a, ACTIVATION_LABELS[a]) for a in backprop.ACTIVATIONS],
        "loss": [(loss, LOSS_LABELS[loss]) for loss in backprop.LOSSES],
    },
)
