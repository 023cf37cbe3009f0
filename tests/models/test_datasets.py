import numpy as np
import pytest

from models.datasets import DOMAIN, GENERATORS, make_xor, train_test_split


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_shapes_labels_and_range(name: str) -> None:
    x, y = GENERATORS[name](500, 0.2, seed=3)
    assert x.shape == (500, 2) and x.dtype == np.float32
    assert y.shape == (500,) and set(np.unique(y)) == {0.0, 1.0}
    assert np.abs(x).max() <= DOMAIN


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_seeded(name: str) -> None:
    a, _ = GENERATORS[name](100, 0.3, seed=5)
    b, _ = GENERATORS[name](100, 0.3, seed=5)
    c, _ = GENERATORS[name](100, 0.3, seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_xor_without_noise_is_the_sign_of_the_product() -> None:
    x, y = make_xor(400, 0.0, seed=1)
    np.testing.assert_array_equal(y, (x[:, 0] * x[:, 1] >= 0).astype(np.float32))
    assert np.abs(x).min() >= 0.3  # kept off the axes


def test_split_keeps_every_point_once() -> None:
    x, y = make_xor(500, 0.1, seed=2)
    x_tr, y_tr, x_te, y_te = train_test_split(x, y, 0.7, seed=2)
    assert len(x_tr) == 350 and len(x_te) == 150
    together = np.concatenate([x_tr, x_te])
    assert sorted(map(tuple, together)) == sorted(map(tuple, x))
