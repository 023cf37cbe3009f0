"""Uploaded images kept in memory, least recently used first out, so memory stays bounded."""

import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated

import numpy as np
from fastapi import Depends, Request

from models.images import ImageFile

MAX_IMAGES = 64
MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class StoredImage:
    pixels: np.ndarray  # uint8 (height, width, channels), decoded and re-checked; never the upload
    format: str
    original_size: tuple[int, int]  # (width, height) the file declared
    file: ImageFile | None = None  # what the file is: mode, bit depth, frames, EXIF orientation
    native: np.ndarray | None = None  # as tf.io.decode_image gives it, reduced (images lab)

    @property
    def nbytes(self) -> int:
        return self.pixels.nbytes + (0 if self.native is None else self.native.nbytes)


class ImageStore:
    """A thread-safe LRU of decoded images keyed by random ids: no file names, no disk."""

    def __init__(self, max_images: int = MAX_IMAGES, max_bytes: int = MAX_BYTES):
        if max_images < 1 or max_bytes < 1:
            raise ValueError(
                f"Limits must be positive. Received: max_images={max_images}, max_bytes={max_bytes}"
            )
        self.max_images = max_images
        self.max_bytes = max_bytes
        self._images: OrderedDict[str, StoredImage] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, image: StoredImage) -> str:
        """Stores `image` and returns its new id (32 hex digits), evicting the oldest if full."""
        if image.nbytes > self.max_bytes:
            raise ValueError(
                f"An image of {image.nbytes} bytes exceeds the store's {self.max_bytes}."
            )
        for array in (image.pixels, image.native):  # shared by concurrent requests: read-only
            if array is not None:
                array.setflags(write=False)
        image_id = uuid.uuid4().hex
        with self._lock:
            self._images[image_id] = image
            self._bytes += image.nbytes
            while len(self._images) > self.max_images or self._bytes > self.max_bytes:
                _, old = self._images.popitem(last=False)
                self._bytes -= old.nbytes
        return image_id

    def get(self, image_id: str) -> StoredImage | None:
        """The image stored under `image_id`, marked recently used, or None if unknown/evicted."""
        with self._lock:
            image = self._images.get(image_id)
            if image is not None:
                self._images.move_to_end(image_id)
            return image

    def __len__(self) -> int:
        with self._lock:
            return len(self._images)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._bytes


def get_image_store(request: Request) -> ImageStore:
    return request.app.state.image_store


ImageStoreDep = Annotated[ImageStore, Depends(get_image_store)]
