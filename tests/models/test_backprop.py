"""models/backprop.py checked against plain-math closed forms, tf.GradientTape and finite differences."""

import ast
import math
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from models import backprop as bp

MODULE = Path(bp.__file__)


def close(a: float, b: float, tol: float) -> bool:
    """Agreement to `tol`, relative once the values exceed 1 (as the lab's ✓)."""
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def test_course_chain_matches_the_formulas_written_out_by_hand() -> None:
    x, y, w = 1.0, 1.0, [0.5, -1.0, 2.0]
    L1 = sigmoid(w[0] * x)
    L2 = sigmoid(w[1] * L1)
    L3 = sigmoid(w[2] * L2)
    loss = -(y * math.log(L3) + (1 - y) * math.log(1 - L3))
    dloss = (L3 - y) / (L3 * (1 - L3))
    d1, d2, d3 = L1 * (1 - L1), L2 * (1 - L2), L3 * (1 - L3)
    expected = {
        "w3": dloss * d3 * L2,
        "w2": dloss * d3 * w[2] * d2 * L1,
        "w1": dloss * d3 * w[2] * d2 * w[1] * d1 * x,
    }

    result = bp.backprop(x, y, w)

    assert result["forward"] == pytest.approx(
        {"L1": L1, "L2": L2, "L3": L3, "loss": loss}, rel=1e-12
    )
    assert result["loss_derivative"] == pytest.approx(dloss, rel=1e-12)
    assert [layer["dL"] for layer in result["layers"]] == pytest.approx([d1, d2, d3], rel=1e-12)
    assert result["deltas"][2] == pytest.approx(dloss * d3, rel=1e-12)
    for g in result["gradients"]:
        assert g["chain"] == pytest.approx(expected[g["param"]], rel=1e-12)
        assert g["tape"] == pytest.approx(expected[g["param"]], rel=1e-12)
        assert g["finite_difference"] == pytest.approx(expected[g["param"]], rel=1e-6)
        assert g["agree"]


def test_each_step_back_also_multiplies_by_the_weight_it_passes() -> None:
    # The shorthand loss'·L3'·L2'·L1 omits w3 (∂L3/∂L2 = L3'·w3); the tape agrees only with w3 in.
    result = bp.backprop(1.0, 1.0, [0.5, -1.0, 2.0])
    dloss = result["loss_derivative"]
    (l1, d1), (_, d2), (_, d3) = ((a["L"], a["dL"]) for a in result["layers"])
    tape_w2 = next(g["tape"] for g in result["gradients"] if g["param"] == "w2")

    assert tape_w2 == pytest.approx(dloss * d3 * 2.0 * d2 * l1, rel=1e-12)
    assert tape_w2 != pytest.approx(dloss * d3 * d2 * l1, rel=1e-3)


def test_random_chains_agree_three_ways() -> None:
    rng = np.random.default_rng(20240917)
    for _ in range(25):
        depth = int(rng.integers(1, bp.MAX_DEPTH + 1))
        w = rng.uniform(-3, 3, depth).tolist()
        b = rng.uniform(-1, 1, depth).tolist() if rng.random() < 0.5 else None
        activation = str(rng.choice(list(bp.ACTIVATIONS)))
        loss = str(rng.choice(list(bp.LOSSES)))
        x, y = float(rng.uniform(-3, 3)), float(rng.uniform(0, 1))

        result = bp.backprop(x, y, w, b, activation, loss)

        assert len(result["gradients"]) == depth * (1 if b is None else 2)
        for g in result["gradients"]:
            assert close(g["chain"], g["tape"], 1e-12), g
            assert close(g["finite_difference"], g["tape"], 1e-6), g
            assert g["agree"], g


def _kink_free(x: float, w: list[float], b: list[float] | None, activation: str) -> bool:
    """Finite differences straddle relu's kink when some z is within the step of 0."""
    if activation != "relu":
        return True
    bt = None if b is None else tf.constant(b, bp.DTYPE)
    z, _ = bp.forward(x, tf.constant(w, bp.DTYPE), bt, activation)
    return bool(tf.reduce_all(tf.abs(z) > 1e-4))


@settings(max_examples=40, deadline=None)
@given(
    x=st.floats(-4, 4),
    y=st.floats(0, 1),
    w=st.lists(st.floats(-4, 4), min_size=1, max_size=bp.MAX_DEPTH),
    bias=st.booleans(),
    activation=st.sampled_from(list(bp.ACTIVATIONS)),
    loss=st.sampled_from(list(bp.LOSSES)),
)
def test_chain_rule_equals_tape_and_finite_differences(
    x: float, y: float, w: list[float], bias: bool, activation: str, loss: str
) -> None:
    b = [0.25 * (i - 1) for i in range(len(w))] if bias else None
    assume(_kink_free(x, w, b, activation))

    result = bp.backprop(x, y, w, b, activation, loss)

    for g in result["gradients"]:
        assert close(g["chain"], g["tape"], 1e-10), g
        assert close(g["finite_difference"], g["tape"], 1e-6), g


@settings(max_examples=40, deadline=None)
@given(
    x=st.floats(-bp.MAX_ABS, bp.MAX_ABS),
    y=st.floats(0, 1),
    w=st.lists(st.floats(-bp.MAX_ABS, bp.MAX_ABS), min_size=1, max_size=bp.MAX_DEPTH),
    activation=st.sampled_from(list(bp.ACTIVATIONS)),
    loss=st.sampled_from(list(bp.LOSSES)),
)
def test_any_allowed_input_gives_finite_numbers_never_nan(
    x: float, y: float, w: list[float], activation: str, loss: str
) -> None:
    result = bp.backprop(x, y, w, [bp.MAX_ABS] * len(w), activation, loss)

    numbers = [*result["forward"].values(), *result["deltas"]]
    numbers += [v for layer in result["layers"] for v in layer.values()]
    numbers += [g[k] for g in result["gradients"] for k in ("chain", "tape", "finite_difference")]
    assert all(math.isfinite(v) for v in numbers)
    # loss' alone may overflow float64 on a saturated output; it is never NaN.
    assert not math.isnan(result["loss_derivative"])
    for g in result["gradients"]:
        assert close(g["chain"], g["tape"], 1e-6), g


def test_saturated_sigmoids_give_honest_tiny_gradients() -> None:
    result = bp.backprop(x=2.0, y=0.0, w=[20.0, 20.0, 20.0])

    grads = {g["param"]: g for g in result["gradients"]}
    # Every sigmoid is saturated: L' ≈ e^(−20) or smaller, still representable, not 0 and not NaN.
    assert 0 < result["layers"][1]["dL"] < 1e-8
    assert 0 < abs(grads["w1"]["chain"]) < 1e-12
    assert close(grads["w1"]["chain"], grads["w1"]["tape"], 1e-12)
    assert all(g["agree"] for g in grads.values())


def test_overflowing_loss_derivative_leaves_the_product_finite() -> None:
    result = bp.backprop(x=1.0, y=0.0, w=[5.0, 5.0, 1000.0])

    assert result["loss_derivative"] == math.inf  # 1/(1 − L3) with L3 = 1 − e^(−993)
    assert result["deltas"][2] == pytest.approx(result["forward"]["L3"] - 0.0)
    assert all(g["agree"] for g in result["gradients"])


@settings(max_examples=30, deadline=None)
@given(z=st.floats(-12, 12), y=st.floats(0, 1))
def test_cross_entropy_derivative_closed_form(z: float, y: float) -> None:
    ce = bp.LOSSES["cross_entropy"]
    zt, yt = tf.constant(z, bp.DTYPE), tf.constant(y, bp.DTYPE)
    p = tf.sigmoid(zt)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([p, zt])
        on_probability = -(yt * tf.math.log(p) + (1 - yt) * tf.math.log(1 - p))
        on_logit = ce.value(zt, yt)

    # loss' = (L − y)/(L(1 − L)), and loss'·L' simplifies to L − y.
    closed = (float(p) - y) / (float(p) * (1 - float(p)))
    assert float(ce.der(zt, yt)) == pytest.approx(closed, rel=1e-9, abs=1e-12)
    assert float(tape.gradient(on_probability, p)) == pytest.approx(closed, rel=1e-9, abs=1e-12)
    assert float(ce.delta(zt, yt)) == pytest.approx(float(p) - y, abs=1e-15)
    assert float(tape.gradient(on_logit, zt)) == pytest.approx(float(p) - y, abs=1e-12)
    assert float(on_logit) == pytest.approx(float(on_probability), rel=1e-9, abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(z=st.floats(-30, 30), y=st.floats(0, 1))
def test_squared_error_derivative_closed_form(z: float, y: float) -> None:
    se = bp.LOSSES["squared_error"]
    zt, yt = tf.constant(z, bp.DTYPE), tf.constant(y, bp.DTYPE)
    L = sigmoid(z)
    with tf.GradientTape() as tape:
        tape.watch(zt)
        value = se.value(zt, yt)

    assert float(value) == pytest.approx((L - y) ** 2, rel=1e-12, abs=1e-15)
    assert float(se.der(zt, yt)) == pytest.approx(2 * (L - y), rel=1e-12, abs=1e-15)
    assert float(se.delta(zt, yt)) == pytest.approx(float(tape.gradient(value, zt)), abs=1e-12)


CLOSED_FORMS = {
    "sigmoid": lambda z: np.exp(-np.abs(z)) / (1 + np.exp(-np.abs(z))) ** 2,
    "tanh": lambda z: 1 / np.cosh(z) ** 2,
    "relu": lambda z: (z > 0).astype(float),
}


@pytest.mark.parametrize("name", list(bp.ACTIVATIONS))
def test_activation_derivatives_match_closed_forms_and_the_tape(name: str) -> None:
    act = bp.ACTIVATIONS[name]
    z_np = np.linspace(-30, 30, 601) + 0.05  # off relu's kink at 0
    z = tf.constant(z_np, bp.DTYPE)
    with tf.GradientTape() as tape:
        tape.watch(z)
        out = act.output(z)

    np.testing.assert_allclose(act.der(z).numpy(), CLOSED_FORMS[name](z_np), rtol=1e-12)
    # The tape uses 1 − tanh² and σ(1 − σ), which round to 0 past |z| ≈ 18: close in absolute terms.
    np.testing.assert_allclose(
        act.der(z).numpy(), tape.gradient(out, z).numpy(), rtol=1e-6, atol=1e-14
    )


def test_sigmoid_layers_shrink_the_gradient_layer_by_layer() -> None:
    result = bp.backprop(x=1.0, y=1.0, w=[1.0] * 10)

    mags = [abs(g["tape"]) for g in result["gradients"]]
    # Each layer back multiplies by w·σ'(z) ≤ 1/4 (times the ratio of inputs, here about 1).
    assert all(m1 < 0.5 * m2 for m1, m2 in zip(mags, mags[1:], strict=False))
    assert mags[0] < 1e-4 * mags[-1]


def test_relu_layers_do_not_shrink_it() -> None:
    result = bp.backprop(x=1.0, y=1.0, w=[1.0] * 10, activation="relu")

    mags = [abs(g["tape"]) for g in result["gradients"]]
    assert mags[0] == pytest.approx(mags[-2], rel=1e-12)


def test_training_steps_follow_the_tape_gradient_and_lower_the_loss() -> None:
    x, y, w, lr = 1.0, 1.0, [0.5, -1.0, 2.0], 0.5
    tape_w = [g["tape"] for g in bp.backprop(x, y, w)["gradients"]]

    run = bp.train(x, y, w, lr=lr, steps=50)

    assert run["steps_done"] == 50 and run["stopped"] is None and run["b"] is None
    assert len(run["loss"]) == len(run["w"]) == 51
    assert run["w"][0] == w
    assert run["w"][1] == pytest.approx(
        [wi - lr * g for wi, g in zip(w, tape_w, strict=True)], rel=1e-12
    )
    assert run["loss"][0] == pytest.approx(bp.backprop(x, y, w)["forward"]["loss"], rel=1e-12)
    assert run["loss"][-1] == pytest.approx(
        bp.backprop(x, y, run["w"][-1])["forward"]["loss"], rel=1e-12
    )
    assert all(a > b for a, b in zip(run["loss"], run["loss"][1:], strict=False))


def test_training_moves_biases_only_when_there_are_some() -> None:
    run = bp.train(1.0, 0.0, [0.5, -1.0, 2.0], [0.0, 0.0, 0.0], lr=1.0, steps=3)

    assert len(run["b"]) == 4 and run["b"][0] == [0.0, 0.0, 0.0] and run["b"][-1] != [0.0, 0.0, 0.0]


def test_training_stops_before_leaving_the_allowed_range() -> None:
    run = bp.train(10.0, 0.0, [100.0] * 4, [1.0] * 4, activation="relu", lr=100.0, steps=50)

    assert run["steps_done"] == 0
    assert run["stopped"] and "step 1" in run["stopped"]
    assert run["w"] == [[100.0] * 4] and len(run["loss"]) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"x": math.nan}, "x must be a finite number in [-1000, 1000]. Received: x=nan"),
        ({"x": 1e4}, "Received: x=10000.0"),
        ({"x": "1"}, "Received: x='1'"),
        ({"x": True}, "Received: x=True"),
        ({"x": 10**400}, "Received: x=<integer of 401 digits>"),
        ({"y": 1.5}, "y must be a finite number in [0, 1]. Received: y=1.5"),
        ({"w": [1.0, math.inf]}, "Received: w[1]=inf"),
        ({"w": [1.0] * 11}, "depth ≤ 10). Received: len(w)=11"),
        ({"w": []}, "Received: len(w)=0"),
        ({"b": [0.0]}, "b must hold one bias per layer, 3 like w. Received: len(b)=1"),
        ({"activation": "softmax"}, "Received: activation='softmax'"),
        ({"loss": "hinge"}, "Received: loss='hinge'"),
    ],
)
def test_bad_input_names_the_field_the_value_and_the_range(kwargs: dict, message: str) -> None:
    args = {"x": 1.0, "y": 1.0, "w": [0.5, -1.0, 2.0]} | kwargs
    with pytest.raises(ValueError) as info:
        bp.backprop(**args)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": 0.0}, "lr must be a finite number in [0.001, 100]. Received: lr=0.0"),
        ({"lr": math.inf}, "Received: lr=inf"),
        ({"steps": 10**6}, "steps must be an integer in [1, 500]. Received: steps=1000000"),
        ({"steps": 2.5}, "Received: steps=2.5"),
    ],
)
def test_bad_training_settings_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        bp.train(1.0, 1.0, [0.5], **kwargs)
    assert message in str(info.value)


def test_module_never_imports_the_web_layer() -> None:
    tree = ast.parse(MODULE.read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    roots = {name.split(".")[0] for name in imported}
    assert not roots & {"app", "fastapi", "starlette", "uvicorn"}
