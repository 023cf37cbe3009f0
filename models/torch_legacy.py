"""Reads a PyTorch `state_dict` saved in the legacy (pre-1.6, non-zip) format, with numpy only.

`torch.save` wrote, before version 1.6, five pickles one after another and then the raw data:

1. the magic number `0x1950A86A20F9469CFC6C`;
2. the format version, 1001;
3. system information: `{"protocol_version": 1001, "little_endian": True, "type_sizes": {...}}`;
4. the `state_dict`, an `OrderedDict` of name → tensor, each tensor pickled as a call of
   `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)` whose
   storage is a *persistent id* `("storage", torch.FloatStorage, key, location, numel, view)`;
5. the list of storage keys, in the order their data follows;

then, for each key, an 8-byte little-endian element count and the elements themselves.

A pickle is a small program that may call any importable function (`os.system` included), so the
pickles are read by an unpickler that knows only the names above and refuses every other one.
The tensor-rebuild and storage names resolve to stand-ins here: torch is never imported.
"""

import collections
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
# Storage class names and the little-endian numpy type of their elements.
STORAGE_DTYPES = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}
_REBUILDERS = ("_rebuild_tensor", "_rebuild_tensor_v2")


class RefusedPickle(pickle.UnpicklingError):
    """A pickle that names a global outside the state_dict allowlist (it could run code)."""


@dataclass(frozen=True)
class _StorageType:
    """Stand-in for a class such as `torch.FloatStorage`."""

    name: str
    dtype: np.dtype


@dataclass(frozen=True)
class _StorageRef:
    """A window of `numel` elements at `offset` in the root storage `key`, whose data follows."""

    key: str
    dtype: np.dtype
    root_numel: int
    offset: int
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    """A tensor as `_rebuild_tensor_v2` describes it: a strided window on a storage."""

    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored) -> _TensorRef:
    """Stand-in for `torch._utils._rebuild_tensor(_v2)`: records where the tensor lives."""
    if not isinstance(storage, _StorageRef):
        raise pickle.UnpicklingError(
            f"A tensor's storage must be a persistent id. Received: {storage!r}"
        )
    return _TensorRef(storage, int(storage_offset), tuple(map(int, size)), tuple(map(int, stride)))


class _StateDictUnpickler(pickle.Unpickler):
    """Resolves only `OrderedDict`, the tensor rebuilders and the storage classes."""

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name in _REBUILDERS:
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name, STORAGE_DTYPES[name])
        raise RefusedPickle(
            f"Refused to load the global {module}.{name}: a state_dict may only name "
            "collections.OrderedDict, torch._utils._rebuild_tensor(_v2) and torch storage "
            "classes, and a pickle that names anything else could run code."
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"Unknown persistent id. Received: {pid!r}")
        _, storage_type, key, _location, numel, view = pid
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str):
            raise pickle.UnpicklingError(f"Malformed storage reference. Received: {pid!r}")
        if view is None:
            return _StorageRef(key, storage_type.dtype, int(numel), 0, int(numel))
        # Before torch 0.4 a storage could be a view (key, offset, size) of a root storage.
        _view_key, offset, view_numel = view
        return _StorageRef(key, storage_type.dtype, int(numel), int(offset), int(view_numel))


def load_legacy_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Reads a `state_dict` saved by `torch.save` in the legacy (pre-1.6, non-zip) format.

    Args:
        path: Path of the `.pth` / `.pt` file.

    Returns:
        A dict from parameter name (e.g. `"_conv_stem.weight"`) to a numpy array with the
        tensor's shape and dtype, in the file's order. PyTorch layouts are kept: a conv kernel
        is `(out, in, height, width)`.

    Raises:
        RefusedPickle: If a pickle names any global outside the allowlist.
        ValueError: If the file is not a legacy state_dict (a zip-format file, a wrong magic
            number or version, big-endian data) or its data is truncated or out of bounds.
    """
    with open(path, "rb") as f:
        if f.read(4) == b"PK\x03\x04":
            raise ValueError(
                f"{path} is in the zip format of torch >= 1.6; only the legacy format is read. "
                "Re-save it with torch.save(..., _use_new_zipfile_serialization=False)."
            )
        f.seek(0)
        magic = _StateDictUnpickler(f).load()
        if magic != MAGIC_NUMBER:
            raise ValueError(f"{path} is not a legacy torch file. Received: magic={magic!r}")
        version = _StateDictUnpickler(f).load()
        if version != PROTOCOL_VERSION:
            raise ValueError(f"Unsupported legacy format version. Received: version={version!r}")
        sys_info = _StateDictUnpickler(f).load()
        if not (isinstance(sys_info, dict) and sys_info.get("little_endian") is True):
            raise ValueError(f"Only little-endian files are read. Received: sys_info={sys_info!r}")
        state = _StateDictUnpickler(f).load()
        keys = _StateDictUnpickler(f).load()
        if not isinstance(state, dict) or not all(
            isinstance(t, _TensorRef) for t in state.values()
        ):
            raise ValueError(f"{path} does not hold a state_dict of tensors.")
        roots = {t.storage.key: t.storage for t in state.values()}
        if not isinstance(keys, list) or set(keys) != set(roots):
            raise ValueError(f"{path}: the storage key list does not match the tensors' storages.")
        storages = {key: _read_storage(f, roots[key]) for key in keys}
    return {name: _tensor(name, ref, storages[ref.storage.key]) for name, ref in state.items()}


def _read_storage(f: BinaryIO, root: _StorageRef) -> np.ndarray:
    """One root storage: its int64 element count, then its elements."""
    head = f.read(8)
    count = int.from_bytes(head, "little", signed=True)
    if len(head) != 8 or count != root.root_numel:
        raise ValueError(
            f"Storage {root.key!r} should hold {root.root_numel} elements. Received: {count} "
            f"(from {len(head)} header bytes)"
        )
    data = f.read(count * root.dtype.itemsize)
    if len(data) != count * root.dtype.itemsize:
        raise ValueError(f"The file ends inside the data of storage {root.key!r}.")
    return np.frombuffer(data, root.dtype)


def _tensor(name: str, ref: _TensorRef, root: np.ndarray) -> np.ndarray:
    """Copies a tensor out of its storage, after checking that its window lies inside it."""
    view = ref.storage
    if view.offset < 0 or view.offset + view.numel > view.root_numel:
        raise ValueError(f"{name}: its storage view lies outside storage {view.key!r}.")
    if len(ref.size) != len(ref.stride) or min(ref.size + ref.stride, default=0) < 0:
        raise ValueError(f"{name}: bad size {ref.size} or stride {ref.stride}.")
    if 0 in ref.size:
        return np.zeros(ref.size, view.dtype)
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride, strict=True))
    if ref.offset < 0 or last >= view.numel:
        raise ValueError(
            f"{name}: size {ref.size}, stride {ref.stride} and offset {ref.offset} reach element "
            f"{last} of a storage of {view.numel}."
        )
    start = view.offset + ref.offset
    strides = tuple(s * view.dtype.itemsize for s in ref.stride)
    window = np.lib.stride_tricks.as_strided(root[start:], ref.size, strides, writeable=False)
    return np.array(window)
