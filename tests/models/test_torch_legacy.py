"""models/torch_legacy.py on legacy files written here the way `torch.save` wrote them, no torch.

`torch.save` pickled a state_dict with a `pickle.Pickler` whose `persistent_id` turned each storage
into `("storage", <storage class>, key, location, numel, None)` and each tensor into a call of
`torch._utils._rebuild_tensor_v2`. A stand-in `torch` module lets the standard pickler write the
same opcodes (GLOBAL "torch FloatStorage", BINPERSID, REDUCE …) without torch installed.
"""

import builtins
import collections
import os
import pickle
import sys
import types

import numpy as np
import pytest

from models.torch_legacy import (
    MAGIC_NUMBER,
    PROTOCOL_VERSION,
    RefusedPickle,
    load_legacy_state_dict,
)

SYS_INFO = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4}}


class _Storage:
    """A flat storage that pickles as a persistent id, as torch's storages did."""

    def __init__(self, key: str, data: np.ndarray, type_name: str):
        self.key, self.data, self.type_name = key, data.reshape(-1), type_name


class _Tensor:
    """A strided window on a `_Storage` that pickles as `_rebuild_tensor_v2(...)`."""

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return sys.modules["torch._utils"]._rebuild_tensor_v2, self.args


@pytest.fixture
def fake_torch(monkeypatch):
    """Importable `torch` and `torch._utils` with the names a legacy state_dict pickles."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("only pickled, never called")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    for name in ("FloatStorage", "LongStorage"):
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    torch._utils = utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


def _write_legacy(path, state: dict, storages: list[_Storage]) -> None:
    """Writes the five pickles, then each storage: int64 element count and little-endian data."""
    torch = sys.modules["torch"]

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _Storage):
                storage_type = getattr(torch, obj.type_name)
                return ("storage", storage_type, obj.key, "cpu", obj.data.size, None)
            return None

    with open(path, "wb") as f:
        for header in (MAGIC_NUMBER, PROTOCOL_VERSION, SYS_INFO):
            pickle.dump(header, f, protocol=2)
        Pickler(f, protocol=2).dump(collections.OrderedDict(state))
        pickle.dump([s.key for s in storages], f, protocol=2)
        for s in storages:
            f.write(np.int64(s.data.size).astype("<i8").tobytes())
            f.write(s.data.astype(s.data.dtype.newbyteorder("<")).tobytes())


def _contiguous(storage: _Storage, shape: tuple) -> _Tensor:
    strides = np.empty(shape, storage.data.dtype).strides
    return _Tensor(storage, 0, shape, tuple(s // storage.data.itemsize for s in strides))


def test_reads_back_what_was_written(fake_torch, tmp_path) -> None:
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(4, 3, 3, 3)).astype(np.float32)
    shared = np.arange(12, dtype=np.float32)  # two tensors in one storage, the second strided
    count = np.array(7, np.int64)
    s_kernel = _Storage("1001", kernel, "FloatStorage")
    s_shared = _Storage("2002", shared, "FloatStorage")
    s_count = _Storage("3003", count, "LongStorage")
    state = {
        "conv.weight": _contiguous(s_kernel, kernel.shape),
        "head": _Tensor(s_shared, 0, (2, 3), (3, 1)),
        "head_t": _Tensor(s_shared, 6, (3, 2), (1, 3)),  # a transposed view at offset 6
        "bn.num_batches_tracked": _Tensor(s_count, 0, (), ()),
    }
    path = tmp_path / "legacy.pth"
    _write_legacy(path, state, [s_kernel, s_shared, s_count])

    loaded = load_legacy_state_dict(path)

    assert list(loaded) == list(state)
    np.testing.assert_array_equal(loaded["conv.weight"], kernel)
    assert loaded["conv.weight"].dtype == np.float32
    np.testing.assert_array_equal(loaded["head"], shared[:6].reshape(2, 3))
    np.testing.assert_array_equal(loaded["head_t"], shared[6:].reshape(2, 3).T)
    assert loaded["bn.num_batches_tracked"].shape == ()
    assert loaded["bn.num_batches_tracked"].dtype == np.int64
    assert loaded["bn.num_batches_tracked"] == 7


class _Calls:
    """Pickles as a call of `function(*args)`: what a malicious pickle does."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


# Protocol 2 writes `builtins` under its Python 2 name, `__builtin__`.
@pytest.mark.parametrize(
    ("payload", "global_name"),
    [
        pytest.param("system", rf"{os.system.__module__}\.system", id="os.system"),
        pytest.param("eval", r"(builtins|__builtin__)\.eval", id="builtins.eval"),
    ],
)
@pytest.mark.parametrize("position", [0, 3], ids=["as_magic_number", "as_state_dict"])
def test_a_pickle_that_calls_a_function_is_refused(tmp_path, payload, global_name, position):
    marker = tmp_path / "pwned"
    code = f"open({str(marker)!r}, 'w').close()"
    evil = (
        _Calls(os.system, f"touch {marker}") if payload == "system" else _Calls(builtins.eval, code)
    )
    pickles = [MAGIC_NUMBER, PROTOCOL_VERSION, SYS_INFO, collections.OrderedDict(), []]
    pickles[position] = evil
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        for obj in pickles:
            pickle.dump(obj, f, protocol=2)

    with pytest.raises(RefusedPickle, match=rf"Refused to load the global {global_name}"):
        load_legacy_state_dict(path)
    assert not marker.exists()


def test_a_tensor_reaching_past_its_storage_is_refused(fake_torch, tmp_path) -> None:
    storage = _Storage("1", np.zeros(4, np.float32), "FloatStorage")
    path = tmp_path / "overrun.pth"
    _write_legacy(path, {"w": _Tensor(storage, 0, (10,), (1,))}, [storage])

    with pytest.raises(ValueError, match=r"reach element 9 of a storage of 4"):
        load_legacy_state_dict(path)


def test_truncated_data_is_refused(fake_torch, tmp_path) -> None:
    storage = _Storage("1", np.ones(100, np.float32), "FloatStorage")
    path = tmp_path / "truncated.pth"
    _write_legacy(path, {"w": _contiguous(storage, (100,))}, [storage])
    path.write_bytes(path.read_bytes()[:-4])

    with pytest.raises(ValueError, match=r"ends inside the data of storage '1'"):
        load_legacy_state_dict(path)


def test_a_zip_format_file_gets_a_clear_error(tmp_path) -> None:
    path = tmp_path / "new.pth"
    path.write_bytes(b"PK\x03\x04" + bytes(100))

    with pytest.raises(ValueError, match=r"zip format of torch >= 1.6"):
        load_legacy_state_dict(path)


def test_reads_the_efficientnet_lite0_weights() -> None:
    from models.efficientnet import weights_path

    state = load_legacy_state_dict(weights_path())

    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    floats = sum(v.size for v in state.values() if v.dtype == np.float32)
    assert floats == 4_694_024  # 4,652,008 trainable + the batch norms' running statistics
