"""models/descent.py against closed forms, least squares, tf.GradientTape and Keras's optimizers."""

import json
import math
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np
import pytest
import tensorflow as tf

from models import descent as gd

START = (-3.2, 2.4)


def rotation(angle: float) -> np.ndarray:
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    return np.array([[c, s], [-s, c]])  # rows: the steep axis u, then v


@pytest.mark.parametrize("curvature, condition, angle", [(1.0, 10.0, 30.0), (4.0, 3.0, -60.0)])
def test_quadratic_path_follows_the_closed_form(curvature, condition, angle) -> None:
    params = gd.check_surface("quadratic", curvature, condition, angle)
    lam = np.array([curvature, curvature / condition])
    lr = 0.7 * gd.critical_rate("quadratic", params)

    run = gd.descend("quadratic", params, START, [lr], 50)[0]

    # In the eigenbasis every coordinate shrinks by (1 − η·λi) per step.
    u0 = rotation(angle) @ np.array(START)
    for k in (0, 1, 7, 50):
        uk = u0 * (1 - lr * lam) ** k
        assert run["path"][k] == pytest.approx((rotation(angle).T @ uk).tolist(), abs=1e-12)
        assert run["loss"][k] == pytest.approx(0.5 * np.sum(lam * uk**2), rel=1e-10)
    hessian = rotation(angle).T @ np.diag(lam) @ rotation(angle)
    assert run["grad"][3] == pytest.approx((hessian @ run["path"][3]).tolist(), abs=1e-12)


@pytest.mark.parametrize("curvature, condition, angle", [(1.0, 10.0, 30.0), (0.3, 50.0, 75.0)])
def test_quadratic_diverges_exactly_above_two_over_lambda_max(curvature, condition, angle) -> None:
    params = gd.check_surface("quadratic", curvature, condition, angle)
    critical = gd.critical_rate("quadratic", params)
    assert critical == pytest.approx(2.0 / curvature)
    assert gd.hessian_eigenvalues("quadratic", params, START)[-1] == pytest.approx(curvature)

    below, at, above = gd.descend(
        "quadratic", params, START, [0.99 * critical, critical, 1.01 * critical], gd.MAX_STEPS
    )

    assert below["diverged_at"] is None and below["final_loss"] < 1e-6 * below["loss"][0]
    # At exactly 2/λmax the steep coordinate flips sign forever: bounded, never converging.
    steep = (rotation(angle) @ np.array(START))[0]
    assert at["diverged_at"] is None
    assert at["final_loss"] == pytest.approx(0.5 * curvature * steep**2, rel=1e-6)
    assert above["diverged_at"] is not None
    k, bound = above["diverged_at"], gd.DIVERGENCE_FACTOR * max(above["loss"][0], 1.0)
    assert above["loss"][k] > bound >= above["loss"][k - 1]
    assert above["path"][k + 1 :] == [None] * (gd.MAX_STEPS - k)
    assert above["final_loss"] is None


def test_absurd_rate_diverges_cleanly_without_nan_in_json() -> None:
    params = gd.check_surface("quadratic")
    runs = gd.descend("quadratic", params, START, [1e3, 0.1], 2000)

    assert runs[0]["diverged_at"] <= 2
    assert runs[1]["diverged_at"] is None
    json.dumps(runs, allow_nan=False)  # raises on NaN or Infinity


def test_linear_regression_minimum_is_the_least_squares_solution() -> None:
    params = gd.check_surface("linear_regression")
    design = np.stack([gd.LINE_X, np.ones_like(gd.LINE_X)], axis=1)
    solution = np.linalg.solve(design.T @ design, design.T @ gd.LINE_Y)
    hessian = 2 * design.T @ design / len(gd.LINE_X)

    assert gd.minimum("linear_regression", params) == pytest.approx(solution, abs=1e-12)
    assert gd.critical_rate("linear_regression", params) == pytest.approx(
        2 / np.linalg.eigvalsh(hessian)[-1]
    )
    run = gd.descend("linear_regression", params, (-1.5, 2.5), [0.5], 2000)[0]
    assert run["path"][-1] == pytest.approx(solution.tolist(), abs=1e-9)
    assert run["grad"][-1] == pytest.approx([0.0, 0.0], abs=1e-9)


def test_nonconvex_surface_has_local_minima_that_trap_small_steps() -> None:
    params = gd.check_surface("nonconvex")
    grid = gd.contour_grid("nonconvex", params)
    best = gd.minimum("nonconvex", params)

    assert grid["loss"].min() > 0  # a log axis can show it
    ends = [
        gd.descend("nonconvex", params, start, [0.1], 2000)[0]["path"][-1]
        for start in ((2.5, 2.5), (-3.0, -1.0))
    ]
    assert ends[0] == pytest.approx(best.tolist(), abs=1e-4)
    assert np.linalg.norm(np.array(ends[1]) - best) > 2  # stuck in another basin


KERAS = {
    "sgd": lambda lr: keras.optimizers.SGD(learning_rate=lr),
    "momentum": lambda lr: keras.optimizers.SGD(learning_rate=lr, momentum=gd.MOMENTUM),
    "rmsprop": lambda lr: keras.optimizers.RMSprop(learning_rate=lr, rho=gd.RHO),
    "adam": lambda lr: keras.optimizers.Adam(learning_rate=lr),
}


@pytest.mark.parametrize("optimizer", gd.OPTIMIZERS)
@pytest.mark.parametrize("kind", ["quadratic", "nonconvex"])
def test_compiled_update_rules_match_keras_optimizers(optimizer: str, kind: str) -> None:
    params = gd.check_surface(kind)
    rates, steps = [0.0625, 0.25], 25  # exact in float32, as Keras keeps learning_rate
    runs = gd.descend(kind, params, START, rates, steps, optimizer)

    for lr, run in zip(rates, runs, strict=True):
        w = keras.Variable(np.array(START), dtype="float64")
        opt = KERAS[optimizer](lr)
        for k in range(1, steps + 1):
            with tf.GradientTape() as tape:
                loss = gd.SURFACES[kind].loss(w[None], tf.constant(params))[0]
            opt.apply_gradients([(tape.gradient(loss, w), w)])
            assert run["path"][k] == pytest.approx(w.numpy().tolist(), abs=1e-5)


@pytest.mark.parametrize(
    "args, message",
    [
        ({"learning_rates": [1e9]}, "learning_rates[0] must be a finite number in [1e-06, 1000]"),
        ({"learning_rates": [-0.1]}, "Received: learning_rates[0]=-0.1"),
        ({"learning_rates": [math.nan]}, "Received: learning_rates[0]=nan"),
        ({"learning_rates": [0.1] * 33}, "1 to 32"),
        ({"steps": 10**6}, "steps must be an integer in [1, 2000]. Received: steps=1000000"),
        ({"start": (9.0, 0.0)}, "start[0] must be a finite number in [-4, 4]"),
        ({"optimizer": "lbfgs"}, "optimizer must be one of sgd"),
    ],
)
def test_bad_runs_are_refused_naming_field_value_and_range(args: dict, message: str) -> None:
    run = {"start": START, "learning_rates": [0.1], "steps": 10, "optimizer": "sgd", **args}
    with pytest.raises(ValueError) as error:
        gd.descend("quadratic", gd.check_surface("quadratic"), **run)
    assert message in str(error.value)


def test_surface_settings_are_checked() -> None:
    with pytest.raises(ValueError, match=r"condition must be a finite number in \[1, 100\]"):
        gd.check_surface("quadratic", condition=0.5)
    with pytest.raises(ValueError, match="surface must be one of"):
        gd.check_surface("rosenbrock")


def test_one_trace_serves_every_request_of_a_surface_and_optimizer() -> None:
    params = gd.check_surface("quadratic")
    gd.descend("quadratic", params, START, [0.1], 10)
    runner = gd._runner("quadratic", "sgd")
    traces = runner.experimental_get_tracing_count()

    gd.descend("quadratic", params, (1.0, 1.0), [0.1, 0.2, 0.3], 200)
    gd.descend("quadratic", gd.check_surface("quadratic", 3.0, 2.0, 0.0), START, [0.5], 7)

    assert runner.experimental_get_tracing_count() == traces


def test_a_runner_is_built_once_when_first_asked_from_many_threads() -> None:
    with ThreadPoolExecutor(8) as pool:
        runners = list(pool.map(lambda _: gd._runner("quadratic", "rmsprop"), range(8)))
    assert all(r is runners[0] for r in runners)


def test_warm_up_leaves_the_surface_and_its_runner_ready() -> None:
    gd.warm_up("linear_regression", "adam")
    assert ("linear_regression", "adam") in gd._RUNNERS
    key = ("linear_regression", tuple(float(v) for v in gd.check_surface("linear_regression")))
    hits = gd._described.cache_info().hits
    gd._described(*key)
    assert gd._described.cache_info().hits == hits + 1
