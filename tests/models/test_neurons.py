"""Single neurons against closed forms, a hand-written GradientTape step, and the Iris data."""

import numpy as np
import pytest
import tensorflow as tf

from models import neurons
from models.datasets import make_xor


def test_linear_regression_converges_to_least_squares() -> None:
    x, y = neurons.make_line(80, 0.2, seed=3, slope=-1.5, intercept=2.0)
    w, b = neurons.init_params("linear", 3)
    frame = neurons.train("linear", x, y, w, b, learning_rate=0.05, steps=3000)
    expected, *_ = np.linalg.lstsq(np.c_[x, np.ones(len(x))], y, rcond=None)
    np.testing.assert_allclose([frame.w[0, 0], frame.b[0]], expected, atol=1e-3)
    assert frame.grid == b""


@pytest.mark.parametrize("compiled", [False, True], ids=["plain", "xla"])
@pytest.mark.parametrize("kind", neurons.KINDS)
def test_one_compiled_step_equals_a_gradient_tape_step(kind: str, compiled: bool) -> None:
    x, y = {
        "linear": neurons.make_line(50, 0.1, 1),
        "logistic": neurons.make_linear(50, 0.1, 1),
        "softmax": neurons.make_three_class(50, 0.1, 1),
    }[kind]
    w0, b0 = neurons.init_params(kind, 1)
    lr = 0.07
    w, b = tf.Variable(w0), tf.Variable(b0)
    with tf.GradientTape() as tape:
        z = tf.matmul(x, w) + b
        if kind == "linear":
            value = tf.reduce_mean((z[:, 0] - y) ** 2)
        elif kind == "logistic":
            p = tf.sigmoid(z[:, 0])
            value = -tf.reduce_mean(y * tf.math.log(p) + (1 - y) * tf.math.log(1 - p))
        else:
            p = tf.nn.softmax(z)
            value = -tf.reduce_mean(tf.math.log(tf.gather(p, y, batch_dims=1)))
    dw, db = tape.gradient(value, [w, b])
    frame = neurons.train(kind, x, y, w0, b0, lr, steps=1, compiled=compiled)
    np.testing.assert_allclose(frame.w, w0 - lr * dw.numpy(), atol=1e-6)
    np.testing.assert_allclose(frame.b, b0 - lr * db.numpy(), atol=1e-6)


def test_softmax_probabilities_sum_to_one() -> None:
    x, _ = neurons.make_three_class(90, 0.3, 2)
    w, b = neurons.init_params("softmax", 2)
    p = neurons.probabilities("softmax", x, w * 5, b).numpy()
    assert p.shape == (90, 3) and (p >= 0).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    # The drawn grid is three planes of round(p · 255): each cell sums to 255 up to rounding.
    grid = np.frombuffer(neurons.train("softmax", x, _, w, b, 0.1, 0).grid, np.uint8)
    planes = grid.reshape(3, neurons.GRID_SIZE**2).astype(int)
    assert np.abs(planes.sum(axis=0) - 255).max() <= 2


def test_logistic_separates_the_linear_set_and_stalls_on_xor() -> None:
    x, y = neurons.make_linear(200, 0.0, 1)
    w, b = neurons.init_params("logistic", 1)
    assert neurons.train("logistic", x, y, w, b, 0.1, 1000).accuracy >= 0.95
    x, y = make_xor(500, 0.0, 1)
    stuck = neurons.train("logistic", x, y, w, b, 0.03, 2000)
    assert stuck.accuracy <= 0.7
    assert stuck.loss > 0.65  # near ln 2: no line does better than a coin


def test_softmax_learns_three_blobs() -> None:
    x, y = neurons.make_three_class(240, 0.0, 1)
    assert np.bincount(y).tolist() == [80, 80, 80]
    w, b = neurons.init_params("softmax", 1)
    assert neurons.train("softmax", x, y, w, b, 0.1, 500).accuracy >= 0.95


def test_a_huge_learning_rate_diverges_without_raising() -> None:
    x, y = neurons.make_line(60, 0.1, 1)
    w, b = neurons.init_params("linear", 1)
    assert not neurons.train("linear", x, y, w, b, 10.0, 200).finite


def test_iris_is_fishers_data() -> None:
    iris = neurons.load_iris(("sepal_length", "petal_width"))
    raw, y = iris["raw"], iris["y"]
    assert raw.shape == (150, 4) and np.bincount(y).tolist() == [50, 50, 50]
    np.testing.assert_allclose(raw[0], [5.1, 3.5, 1.4, 0.2])  # the first setosa
    np.testing.assert_allclose(raw[50], [7.0, 3.2, 4.7, 1.4])  # the first versicolor
    np.testing.assert_allclose(raw[149], [5.9, 3.0, 5.1, 1.8])  # the last virginica
    np.testing.assert_allclose(raw.mean(axis=0), [5.843, 3.057, 3.758, 1.199], atol=1e-3)
    np.testing.assert_allclose(raw[y == 0].mean(axis=0), [5.006, 3.428, 1.462, 0.246], atol=1e-3)
    # The chosen features, z-scored.
    np.testing.assert_allclose(iris["x"].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(iris["x"].std(axis=0), 1, atol=1e-5)
    with pytest.raises(ValueError, match="Received"):
        neurons.load_iris(("petal_width", "petal_width"))


def test_generators_are_seeded() -> None:
    for make in (neurons.make_line, neurons.make_linear, neurons.make_three_class):
        a, b = make(30, 0.2, 5), make(30, 0.2, 5)
        np.testing.assert_array_equal(a[0], b[0])
        assert not np.array_equal(a[0], make(30, 0.2, 6)[0])
