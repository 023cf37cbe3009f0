"""The binary layout of the multi-layer network lab's frame (`/ws/mlp`, docs/protocol.md).

Only numpy: the bench's client processes read frames with it without importing TensorFlow, which
`app.protocol.mlp` (the rest of the contract) brings through `models/`.
"""

import numpy as np

MAX_LAYERS = 6  # hidden layers of a network

# A frame travels as one binary message (little-endian): this fixed header, then the drawn weights
# and biases as float32 (`weights[0]` row by row, `biases[0]`, `weights[1]` …), then the grids as
# uint8. A metric that is null (not finite, or a regressor's accuracy) is NaN in the header.
FRAME_KIND = 1  # the header's first byte: what the binary message is
FRAME_FLAGS = {"DIVERGED": 1, "RUNNING": 2}
LAYER_SLOTS = MAX_LAYERS + 2  # inputs, hidden layers, output; unused slots are 0
FRAME_HEADER = np.dtype(
    [
        ("kind", "u1"), ("flags", "u1"), ("grid_size", "u1"), ("neuron_grid_size", "u1"),
        ("version", "<u4"), ("steps_per_frame", "<u4"), ("domain", "<f4"),
        ("step", "<f8"), ("epoch", "<f8"),
        ("loss", "<f4"), ("test_loss", "<f4"), ("accuracy", "<f4"), ("test_accuracy", "<f4"),
        ("layers", "u1", (LAYER_SLOTS,)), ("drawn", "u1", (LAYER_SLOTS,)),
    ]
)  # fmt: skip
METRICS = ("loss", "test_loss", "accuracy", "test_accuracy")


def _layout() -> dict[str, list]:
    """`{field: [byte offset, DataView type, count]}` of `FRAME_HEADER`, for the page's decoder."""
    out = {}
    for name in FRAME_HEADER.names:
        dtype, offset = FRAME_HEADER.fields[name][:2]
        base = dtype.base if dtype.shape else dtype
        kind = {"u": "Uint", "f": "Float"}[base.kind] + str(base.itemsize * 8)  # a DataView getter
        out[name] = [offset, kind, int(np.prod(dtype.shape))]
    return out


FRAME_LAYOUT = _layout()
FRAME_HEADER_BYTES = FRAME_HEADER.itemsize
