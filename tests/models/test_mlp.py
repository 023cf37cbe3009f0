"""The compiled trainer against a plain `tf.GradientTape` + SGD loop, and what XOR and the plane
teach: classifiers and regressors, alone and stacked together in one call."""

import numpy as np
import pytest
import tensorflow as tf

from models.datasets import DATASETS, GENERATORS, PROBLEMS, train_test_split
from models.mlp import (
    ACTIVATIONS,
    FEATURES,
    Architecture,
    Batch,
    TraceShape,
    Trainer,
    batch_indices,
    feature_selector,
    grid_points,
    init_params,
)

GRID, NEURON_GRID, DOMAIN = 16, 8, 6.0
N = 500


def _data(dataset: str = "xor", seed: int = 1, ratio: float = 0.5, noise: float = 0.0):
    x, y = GENERATORS[dataset](N, noise, seed)
    return train_test_split(x, y, ratio, seed)


def _batch(nets: list[dict], k: int) -> Batch:
    """Stacks networks (dicts of arch, seed, lr, l1, l2, features, data) into one Batch."""

    def pad_points(a, width):
        out = np.zeros((width, *a.shape[1:]), np.float32)
        out[: len(a)] = a
        return out

    params = [np.stack(p) for p in zip(*[n["arch"].pad(n["params"]) for n in nets], strict=True)]
    masks = [np.stack(m) for m in zip(*[n["arch"].masks() for n in nets], strict=True)]
    col = {}
    for name, fn in {
        "x_train": lambda n: pad_points(n["data"][0], N),
        "y_train": lambda n: pad_points(n["data"][1], N),
        "n_train": lambda n: np.int32(len(n["data"][0])),
        "x_test": lambda n: pad_points(n["data"][2], N),
        "y_test": lambda n: pad_points(n["data"][3], N),
        "n_test": lambda n: np.int32(len(n["data"][2])),
        "selector": lambda n: feature_selector(n["features"], len(FEATURES)),
        "activation": lambda n: np.int32(ACTIVATIONS.index(n["arch"].activation)),
        "problem": lambda n: np.int32(PROBLEMS.index(n["arch"].problem)),
        "batch_size": lambda n: np.int32(n["arch"].batch_size),
        "learning_rate": lambda n: np.float32(n["lr"]),
        "l1": lambda n: np.float32(n.get("l1", 0.0)),
        "l2": lambda n: np.float32(n.get("l2", 0.0)),
        "seed": lambda n: np.int32(n["seed"]),
        "step": lambda n: np.int32(n.get("step", 0)),
    }.items():
        col[name] = np.stack([fn(n) for n in nets])
    return Batch(params=params, masks=masks, k=np.full(len(nets), k, np.int32), **col)


def _net(
    hidden,
    activation="tanh",
    batch_size=10,
    lr=0.1,
    seed=1,
    features=("x1", "x2"),
    dataset="xor",
    **kw,
):
    problem = next(p for p in PROBLEMS if dataset in DATASETS[p])
    arch = Architecture(len(features), tuple(hidden), activation, batch_size, problem)
    return {
        "arch": arch,
        "params": init_params(arch, seed),
        "seed": seed,
        "lr": lr,
        "features": list(features),
        "data": _data(dataset, seed, noise=kw.pop("noise", 0.0)),
        **kw,
    }


def _unpadded_forward(params: list, x: np.ndarray, net: dict) -> tf.Tensor:
    """The output neuron's pre-activation on points `x` `(M, 2)`, one plain network, no masks."""
    act = {"tanh": tf.tanh, "relu": tf.nn.relu, "sigmoid": tf.sigmoid, "linear": tf.identity}
    act = act[net["arch"].activation]
    cols = [FEATURES.index(f) for f in net["features"]]
    x1, x2 = x[:, 0], x[:, 1]
    bank = np.stack([x1, x2, x1**2, x2**2, x1 * x2, np.sin(x1), np.sin(x2)], axis=1)
    z = tf.constant(bank[:, cols])
    for layer in range(len(params) // 2):
        z = tf.matmul(z, params[2 * layer]) + params[2 * layer + 1]
        if layer < len(params) // 2 - 1:
            z = act(z)
    return z[:, 0]


def _reference_loss(net: dict, z: tf.Tensor, y: np.ndarray) -> tf.Tensor:
    """Mean cross-entropy of sigmoid(z) (classification) or mean squared error (regression)."""
    if net["arch"].problem == "regression":
        return tf.reduce_mean(tf.square(z - y))
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=z))


def _reference(net: dict, k: int) -> list[np.ndarray]:
    """k steps of plain SGD with tf.GradientTape on the unpadded network, one example set each."""
    arch, (x_tr, y_tr, _, _) = net["arch"], net["data"]
    params = [tf.Variable(p) for p in net["params"]]
    for step in range(net.get("step", 0), net.get("step", 0) + k):
        idx = batch_indices(
            tf.constant([net["seed"]]),
            tf.constant([step]),
            tf.constant([arch.batch_size]),
            tf.constant([len(x_tr)]),
            arch.batch_size,
        )[0].numpy()
        with tf.GradientTape() as tape:
            loss = _reference_loss(net, _unpadded_forward(params, x_tr[idx], net), y_tr[idx])
            weights = params[0::2]
            loss += net.get("l1", 0.0) * tf.add_n([tf.reduce_sum(tf.abs(w)) for w in weights])
            loss += net.get("l2", 0.0) * tf.add_n([tf.reduce_sum(w**2) for w in weights])
        for v, g in zip(params, tape.gradient(loss, params), strict=True):
            v.assign_sub(net["lr"] * g)
    return [v.numpy() for v in params]


def _trainer(arch: Architecture) -> Trainer:
    return Trainer(arch.shape, GRID, NEURON_GRID, DOMAIN)


def _run(trainer: Trainer, batch: Batch, xla: bool):
    """The trainer's call on `batch`, XLA-compiled first if `xla`."""
    if xla:
        trainer.compile_xla(batch)
        assert len(batch.k) in trainer.xla_ready
    return trainer(batch)


@pytest.mark.parametrize(
    "net",
    [
        _net([4], "tanh", 10, lr=0.1),
        _net([3, 2], "relu", 7, lr=0.05, l2=0.01, features=("x1", "x2", "x1_sq", "sin_x2")),
        _net([], "linear", 1, lr=0.5, l1=0.003, step=40),
        _net([5, 5, 5], "sigmoid", 25, lr=1.0, seed=9, features=("x1x2",)),
    ],
    ids=["tanh-4", "relu-3-2-l2", "logistic-l1", "sigmoid-5-5-5"],
)
@pytest.mark.parametrize("xla", [False, True], ids=["plain", "xla"])
def test_compiled_steps_equal_gradient_tape_sgd(net: dict, xla: bool) -> None:
    """Both versions of a call: the plain graph, and XLA's (its small products fused, `dense`)."""
    k = 12
    new, metrics, _ = _run(_trainer(net["arch"]), _batch([net], k), xla)
    got = net["arch"].unpad([p[0] for p in new])
    for a, b in zip(got, _reference(net, k), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)
    assert np.all(np.isfinite(metrics))


@pytest.mark.parametrize(
    "net",
    [
        _net([4], "tanh", 10, lr=0.1, dataset="plane"),
        _net([3, 2], "relu", 7, lr=0.05, l2=0.01, dataset="multi-gaussian", noise=0.2),
        _net([], "linear", 1, lr=0.02, l1=0.003, step=40, dataset="plane", features=("x1", "x2")),
        _net(
            [5, 5],
            "sigmoid",
            25,
            lr=0.3,
            seed=9,
            dataset="multi-gaussian",
            features=("x1_sq", "x2_sq", "sin_x1"),
        ),
    ],  # fmt: skip
    ids=["tanh-4", "relu-3-2-l2", "linear-l1", "sigmoid-5-5"],
)
def test_regression_steps_equal_gradient_tape_sgd_on_squared_error(net: dict) -> None:
    """A regressor's output is linear and its loss the squared error: k compiled steps equal k
    steps of the tape's gradients of mean((z - y)²), and the metrics are the data's MSE."""
    k = 12
    new, metrics, _ = _trainer(net["arch"])(_batch([net], k))
    got = net["arch"].unpad([p[0] for p in new])
    want = _reference(net, k)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)
    x_tr, y_tr, x_te, y_te = net["data"]
    for column, (x, y) in enumerate([(x_tr, y_tr), (x_te, y_te)]):
        mse = float(np.mean((_unpadded_forward(want, x, net).numpy() - y) ** 2))
        assert metrics[0, column] == pytest.approx(mse, rel=1e-4)


def test_regression_gradients_are_the_tapes_of_the_squared_error() -> None:
    """One step at learning rate 1 is minus the gradient itself: compare it entry by entry."""
    net = _net([3], "tanh", 8, lr=1.0, dataset="multi-gaussian", seed=3)
    new, _, _ = _trainer(net["arch"])(_batch([net], 1))
    got = [
        p - q for p, q in zip(net["params"], net["arch"].unpad([p[0] for p in new]), strict=True)
    ]
    params = [tf.Variable(p) for p in net["params"]]
    x_tr, y_tr = net["data"][:2]
    idx = batch_indices(
        tf.constant([3]), tf.constant([0]), tf.constant([8]), tf.constant([N // 2]), 8
    )
    with tf.GradientTape() as tape:
        z = _unpadded_forward(params, x_tr[idx[0].numpy()], net)
        loss = tf.reduce_mean(tf.square(z - y_tr[idx[0].numpy()]))
    for a, g in zip(got, tape.gradient(loss, params), strict=True):
        np.testing.assert_allclose(a, g.numpy(), atol=1e-5, rtol=1e-4)
        assert np.any(a != 0)


def test_classifiers_and_regressors_stack_in_one_call() -> None:
    """A class mixing both problems trains in one call of one trace, each net as if alone."""
    nets = [
        _net([5, 2], lr=0.03),
        _net([5, 2], lr=0.03, dataset="plane"),
        _net([6, 1], "relu", lr=0.1, seed=4, dataset="multi-gaussian"),
        _net([8, 3], "sigmoid", lr=0.3, seed=7, dataset="circle"),
    ]
    assert len({n["arch"].shape for n in nets}) == 1
    new, metrics, frames = _trainer(nets[0]["arch"])(_batch(nets, 9))
    for i, net in enumerate(nets):
        got = net["arch"].unpad([p[i] for p in new])
        for a, b in zip(got, _reference(net, 9), strict=True):
            np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)
    assert np.all(np.isfinite(metrics))
    # The output grid: a classifier's probability, a regressor's value mapped from [-1, 1].
    pts = grid_points(GRID, DOMAIN)
    for i in (0, 1):
        z = _unpadded_forward(nets[i]["arch"].unpad([p[i] for p in new]), pts, nets[i]).numpy()
        share = 1 / (1 + np.exp(-z)) if i == 0 else (np.clip(z, -1, 1) + 1) / 2
        np.testing.assert_allclose(frames[i, : GRID**2], np.round(share * 255), atol=1)


def test_a_linear_regressor_learns_the_plane() -> None:
    net = _net([], "linear", 10, lr=0.01, dataset="plane")
    _, metrics, _ = _trainer(net["arch"])(_batch([net], 3000))
    assert metrics[0, 1] < 0.01  # test MSE: the plane is (x1 + x2) / 10, clipped


def test_stacked_networks_train_independently() -> None:
    """Three different networks in one call each equal their own solo run."""
    nets = [
        _net([5, 2], lr=0.03),
        _net([6, 1], "relu", lr=0.3, seed=4),
        _net([8, 3], lr=0.1, seed=7),
    ]
    assert len({n["arch"].shape for n in nets}) == 1
    trainer = _trainer(nets[0]["arch"])
    new, _, _ = trainer(_batch(nets, 9))
    for i, net in enumerate(nets):
        got = net["arch"].unpad([p[i] for p in new])
        for a, b in zip(got, _reference(net, 9), strict=True):
            np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)


def _exact_batch(net: dict, k: int) -> Batch:
    """One network in its exact shape: its own inputs, layer sizes and batch, no padding."""
    arch = net["arch"]
    batch = _batch([net], k)
    batch.params = [p[None] for p in net["params"]]
    batch.masks = [m[None] for m in arch.masks(arch.exact)]
    batch.selector = feature_selector(net["features"], arch.n_inputs)[None]
    return batch


@pytest.mark.parametrize(("unroll", "xla"), [(1, False), (4, False), (4, True)])
def test_an_exact_unrolled_trace_equals_gradient_tape_sgd(unroll: int, xla: bool) -> None:
    """The max-speed trace: nothing padded, several steps a loop iteration, and a k that is not
    a multiple of them; compiled by XLA as a max-speed session runs it."""
    net = _net([3, 2], "relu", 7, lr=0.05, l2=0.01, features=("x1", "x2", "x1_sq"))
    arch = net["arch"]
    trainer = Trainer(arch.exact, GRID, NEURON_GRID, DOMAIN, unroll)
    new, metrics, frames = _run(trainer, _exact_batch(net, 10), xla)
    for a, b in zip([p[0] for p in new], _reference(net, 10), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)
    assert frames.shape == (1, GRID**2 + (3 + 2) * NEURON_GRID**2)


def test_a_network_trains_the_same_in_a_wider_shape() -> None:
    """A stand-in shape (wider layers, a bigger batch) trains a network as its own shape does."""
    net = _net([3, 2], "tanh", 7, lr=0.1)
    arch = net["arch"]
    wide = TraceShape.padded(2, 16, 32)
    assert wide.fits(arch) and wide != arch.shape and not wide.fits(_net([3])["arch"])
    batch = _batch([net], 9)
    batch.params = [p[None] for p in arch.pad(net["params"], wide)]
    batch.masks = [m[None] for m in arch.masks(wide)]
    new, _, _ = Trainer(wide, GRID, NEURON_GRID, DOMAIN)(batch)
    for a, b in zip(arch.unpad([p[0] for p in new]), _reference(net, 9), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)


def test_zero_steps_leave_parameters_alone_and_per_network_k() -> None:
    nets = [_net([4]), _net([4], seed=2)]
    batch = _batch(nets, 5)
    batch.k = np.array([0, 5], np.int32)
    new, _, _ = _trainer(nets[0]["arch"])(batch)
    for before, after in zip(batch.params, new, strict=True):
        np.testing.assert_array_equal(before[0], after[0])
        assert not np.array_equal(before[1], after[1])


def _train_xor(hidden, steps=2000) -> float:
    net = _net(hidden, "tanh", 10, lr=0.1, seed=1)
    _, metrics, _ = _trainer(net["arch"])(_batch([net], steps))
    return float(metrics[0, 3])


def test_xor_is_learned_with_four_hidden_neurons() -> None:
    assert _train_xor([4]) >= 0.95


def test_xor_is_not_learned_with_one_hidden_neuron() -> None:
    assert _train_xor([1]) <= 0.8


def test_frames_hold_the_grids() -> None:
    net = _net([3, 9])
    _, _, frames = _trainer(net["arch"])(_batch([net], 0))
    drawn = sum(net["arch"].shape.drawn[1:-1])  # each hidden layer's first 8 of its 16 (padded)
    assert drawn == 16
    assert frames.shape == (1, GRID**2 + drawn * NEURON_GRID**2)
    assert frames.dtype == np.uint8
    out = frames[0, : GRID**2].reshape(GRID, GRID)
    # The output grid is the sigmoid of the net on the grid points, row 0 at the top.
    pts = grid_points(GRID, DOMAIN)
    assert pts[0].tolist() == pytest.approx([-DOMAIN + 6 / GRID, DOMAIN - 6 / GRID])
    assert out.min() < out.max()


def test_batch_indices_do_not_depend_on_padding() -> None:
    args = (tf.constant([3, 4]), tf.constant([10, 11]), tf.constant([5, 9]), tf.constant([250, 7]))
    narrow = batch_indices(*args, 9).numpy()
    wide = batch_indices(*args, 16).numpy()
    np.testing.assert_array_equal(narrow, wide[:, :9])
    assert narrow[0].max() < 250 and narrow[1].max() < 7
