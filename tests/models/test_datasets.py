import numpy as np
import pytest

from models.datasets import (
    DATASETS,
    DOMAIN,
    GENERATORS,
    PROBLEMS,
    make_multi_gaussian,
    make_plane,
    make_xor,
    train_test_split,
)


@pytest.mark.parametrize("name", DATASETS["classification"])
def test_shapes_labels_and_range(name: str) -> None:
    x, y = GENERATORS[name](500, 0.2, seed=3)
    assert x.shape == (500, 2) and x.dtype == np.float32
    assert y.shape == (500,) and set(np.unique(y)) == {0.0, 1.0}
    assert np.abs(x).max() <= DOMAIN


@pytest.mark.parametrize("name", DATASETS["regression"])
@pytest.mark.parametrize("noise", [0.0, 0.5])
def test_regression_targets_are_continuous_in_minus_one_to_one(name: str, noise: float) -> None:
    x, y = GENERATORS[name](500, noise, seed=3)
    assert x.shape == (500, 2) and x.dtype == np.float32
    assert y.shape == (500,) and y.dtype == np.float32
    assert y.min() >= -1 and y.max() <= 1
    assert y.min() < -0.5 and y.max() > 0.5 and len(np.unique(y)) > 100  # continuous, both signs
    assert np.abs(x).max() <= DOMAIN


def test_every_data_set_belongs_to_one_problem() -> None:
    assert PROBLEMS == ("classification", "regression")
    names = [name for p in PROBLEMS for name in DATASETS[p]]
    assert sorted(names) == sorted(GENERATORS) and len(set(names)) == len(names)


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


def test_plane_without_noise_is_the_scaled_sum() -> None:
    x, y = make_plane(400, 0.0, seed=1)
    np.testing.assert_allclose(y, np.clip((x[:, 0] + x[:, 1]) / 10, -1, 1), atol=1e-6)


def test_multi_gaussian_without_noise_peaks_at_its_bumps() -> None:
    x, y = make_multi_gaussian(2000, 0.0, seed=1)

    def near(cx: float, cy: float) -> np.ndarray:
        return y[np.hypot(x[:, 0] - cx, x[:, 1] - cy) < 0.5]

    assert near(-4, 2.5).min() > 0.7 and near(0, 2.5).max() < -0.7  # top row: +, −, +
    assert near(0, -2.5).min() > 0.7 and near(4, -2.5).max() < -0.7  # bottom row: −, +, −
    far = np.all(np.hypot(x[:, None, 0] - [-4, 0, 4], x[:, None, 1] - 2.5) > 2, axis=1) & np.all(
        np.hypot(x[:, None, 0] - [-4, 0, 4], x[:, None, 1] + 2.5) > 2, axis=1
    )
    assert np.all(y[far] == 0)  # the plane between the bumps


def test_split_keeps_every_point_once() -> None:
    x, y = make_xor(500, 0.1, seed=2)
    x_tr, y_tr, x_te, y_te = train_test_split(x, y, 0.7, seed=2)
    assert len(x_tr) == 350 and len(x_te) == 150
    together = np.concatenate([x_tr, x_te])
    assert sorted(map(tuple, together)) == sorted(map(tuple, x))
