"""`FlatCall` returns what the concrete function's own call returns, and refuses a wrong arity."""

from functools import partial

import numpy as np
import pytest
import tensorflow as tf

from models.flat_call import FlatCall


def _body(pair, k, flag, scale=1.0):
    a, m = pair
    scaled = a * tf.cast(k, tf.float32) * scale
    return {"sum": tf.reduce_sum(scaled), "m": [tf.where(flag, m, -m), tf.linalg.inv(m)]}


# A keyword bound to the traced function is a constant of its graph, not an input (as the MLP's).
_fn = tf.function(
    partial(_body, scale=2.0),
    input_signature=[
        [tf.TensorSpec([None], tf.float32), tf.TensorSpec([2, 2], tf.float32)],
        tf.TensorSpec([], tf.int32),
        tf.TensorSpec([], tf.bool),
    ],
    jit_compile=True,
)


def test_flat_call_matches_the_structured_call() -> None:
    concrete = _fn.get_concrete_function()
    args = ([np.arange(5, dtype=np.float32), np.array([[2, 1], [1, 3]], np.float32)], 3, False)
    # Python and NumPy scalars alike become the traced dtypes (an int for the int32, a bool).
    expected, got = concrete(*args, scale=2.0), FlatCall(concrete)(*args)
    assert tf.nest.map_structure(lambda t: t.dtype, got) == tf.nest.map_structure(
        lambda t: t.dtype, expected
    )
    tf.nest.map_structure(lambda e, g: np.testing.assert_array_equal(e, g), expected, got)
    assert float(got["sum"]) == 60.0


def test_flat_call_refuses_a_wrong_number_of_arguments() -> None:
    call = FlatCall(_fn.get_concrete_function())
    with pytest.raises(TypeError, match="takes 4 tensors. Received: 3"):
        call([np.zeros(3, np.float32)], 1, True)
