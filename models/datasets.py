"""The 2-D data sets of TF Playground, seeded: every generator is `make_x(n, noise, seed)`.

Points lie in [-6, 6]². Classification labels are 0 (orange) and 1 (blue); regression targets are
continuous in [-1, 1] (orange to blue). `noise` is a fraction, 0 to 0.5.
"""

import numpy as np

RADIUS = 5.0  # the classification data's extent; the drawn domain is a little larger
DOMAIN = 6.0
# The multi-gaussian's six bumps (TF Playground's regressGaussian): centre x1, x2 and sign.
BUMPS = np.array(
    [[-4, 2.5, 1], [0, 2.5, -1], [4, 2.5, 1], [-4, -2.5, -1], [0, -2.5, 1], [4, -2.5, -1]]
)
BUMP_RADIUS = 2.0  # a bump's |target| falls linearly from 1 at its centre to 0 at this distance


def make_xor(n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Four quadrants, opposite ones alike: no single line separates them.

    Args:
        n: Number of points.
        noise: Float in [0, 0.5]. Label noise: the label is read from a jittered copy of the point.
        seed: Integer seed; the same seed gives the same points.

    Returns:
        `(x, y)`: `x` of shape `(n, 2)` float32, `y` of shape `(n,)` float32 in {0, 1}.
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(-RADIUS, RADIUS, size=(n, 2))
    x += np.where(x > 0, 0.3, -0.3)  # keep points off the axes, where the label flips
    jitter = rng.uniform(-RADIUS, RADIUS, size=(n, 2)) * noise
    y = ((x + jitter).prod(axis=1) >= 0).astype(np.float32)
    return x.astype(np.float32), y


def make_circle(n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A disc of one class inside a ring of the other.

    Args:
        n: Number of points, half inside and half in the ring.
        noise: Float in [0, 0.5]. Label noise, as in `make_xor`.
        seed: Integer seed.

    Returns:
        `(x, y)`: `x` of shape `(n, 2)` float32, `y` of shape `(n,)` float32 in {0, 1}; 1 inside.
    """
    rng = np.random.default_rng(seed)
    inner = n // 2
    r = np.concatenate(
        [rng.uniform(0, RADIUS * 0.5, inner), rng.uniform(RADIUS * 0.7, RADIUS, n - inner)]
    )
    angle = rng.uniform(0, 2 * np.pi, n)
    x = np.stack([r * np.sin(angle), r * np.cos(angle)], axis=1)
    jitter = rng.uniform(-RADIUS, RADIUS, size=(n, 2)) * noise
    y = (np.linalg.norm(x + jitter, axis=1) < RADIUS * 0.5).astype(np.float32)
    return x.astype(np.float32), y


def make_gauss(n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian blobs around (2, 2) and (-2, -2); noise widens them until they overlap.

    Args:
        n: Number of points, half in each blob.
        noise: Float in [0, 0.5]. Maps linearly to a standard deviation from 0.5 to 4 (variance).
        seed: Integer seed.

    Returns:
        `(x, y)`: `x` of shape `(n, 2)` float32, `y` of shape `(n,)` float32 in {0, 1}.
    """
    rng = np.random.default_rng(seed)
    variance = 0.5 + (4.0 - 0.5) * (noise / 0.5)
    half = n // 2
    y = np.concatenate([np.ones(half), np.zeros(n - half)]).astype(np.float32)
    centres = np.where(y[:, None] == 1, 2.0, -2.0)
    x = centres + rng.normal(0, np.sqrt(variance), size=(n, 2))
    return np.clip(x, -DOMAIN, DOMAIN).astype(np.float32), y


def make_spiral(n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved spirals, the hardest of the four.

    Args:
        n: Number of points, half on each arm.
        noise: Float in [0, 0.5]. Positional jitter along both axes.
        seed: Integer seed.

    Returns:
        `(x, y)`: `x` of shape `(n, 2)` float32, `y` of shape `(n,)` float32 in {0, 1}.
    """
    rng = np.random.default_rng(seed)
    half = n // 2
    arms = []
    for delta, count in ((0.0, half), (np.pi, n - half)):
        i = np.arange(count)
        r = i / count * RADIUS
        t = 1.75 * i / count * 2 * np.pi + delta
        jitter = rng.uniform(-1, 1, size=(count, 2)) * noise
        arms.append(np.stack([r * np.sin(t), r * np.cos(t)], axis=1) + jitter)
    x = np.concatenate(arms)
    y = np.concatenate([np.ones(half), np.zeros(n - half)]).astype(np.float32)
    return x.astype(np.float32), y


def _uniform_with_jitter(n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    # TF Playground's regression data: points over the whole plane; the target is read from a
    # jittered copy of each point, so noise blurs the target without moving the point.
    rng = np.random.default_rng(seed)
    x = rng.uniform(-DOMAIN, DOMAIN, size=(n, 2))
    return x, x + rng.uniform(-DOMAIN, DOMAIN, size=(n, 2)) * noise


def make_plane(n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A tilted plane: the target rises from -1 at the bottom left to +1 at the top right.

    Args:
        n: Number of points, uniform over the plane.
        noise: Float in [0, 0.5]. The target is read from a point jittered by up to
            `noise * DOMAIN` along each axis.
        seed: Integer seed.

    Returns:
        `(x, y)`: `x` of shape `(n, 2)` float32, `y` of shape `(n,)` float32 in [-1, 1]:
        `(x1 + x2) / 10`, clipped.
    """
    x, read = _uniform_with_jitter(n, noise, seed)
    y = np.clip(read.sum(axis=1) / 10.0, -1.0, 1.0)
    return x.astype(np.float32), y.astype(np.float32)


def make_multi_gaussian(n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Six bumps in two rows, alternately +1 (blue) and -1 (orange), on a plane at 0.

    Args:
        n: Number of points, uniform over the plane.
        noise: Float in [0, 0.5]. Jitter of the point the target is read from, as in `make_plane`.
        seed: Integer seed.

    Returns:
        `(x, y)`: `x` of shape `(n, 2)` float32, `y` of shape `(n,)` float32 in [-1, 1]: the
        value of the bump that is largest in absolute value there.
    """
    x, read = _uniform_with_jitter(n, noise, seed)
    distance = np.linalg.norm(read[:, None, :] - BUMPS[None, :, :2], axis=2)  # (n, bumps)
    values = BUMPS[:, 2] * np.clip(1.0 - distance / BUMP_RADIUS, 0.0, 1.0)
    y = values[np.arange(n), np.abs(values).argmax(axis=1)]
    return x.astype(np.float32), y.astype(np.float32)


CLASSIFICATION = {
    "xor": make_xor,
    "circle": make_circle,
    "gauss": make_gauss,
    "spiral": make_spiral,
}
REGRESSION = {"plane": make_plane, "multi-gaussian": make_multi_gaussian}
GENERATORS = {**CLASSIFICATION, **REGRESSION}
# Each problem's data sets, in the order a page lists them; a network's output and loss follow its
# problem (models/mlp.py).
DATASETS = {"classification": tuple(CLASSIFICATION), "regression": tuple(REGRESSION)}
PROBLEMS = tuple(DATASETS)


def train_test_split(
    x: np.ndarray, y: np.ndarray, train_ratio: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffles the points with `seed` and splits them.

    Args:
        x: Points of shape `(n, 2)`.
        y: Labels of shape `(n,)`.
        train_ratio: Float in (0, 1). The share of points for training.
        seed: Integer seed of the shuffle.

    Returns:
        `(x_train, y_train, x_test, y_test)`.
    """
    order = np.random.default_rng(seed + 1).permutation(len(x))
    cut = int(round(len(x) * train_ratio))
    tr, te = order[:cut], order[cut:]
    return x[tr], y[tr], x[te], y[te]
