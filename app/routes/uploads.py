"""Image uploads: the raw file as the request body, checked and decoded, kept in memory by id."""

from collections.abc import Callable

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from app.image_store import ImageStoreDep, StoredImage
from app.request_limits import StrictJSONRoute, read_capped_body, unprocessable
from app.settings import Settings
from models.images import ALLOWED_FORMATS, DecodedImage, ImageRejected, decode_image

# Labs work on small images; a stored image is at most this many pixels a side (aspect kept).
STORE_MAX_SIDE = 512
# The images lab's working copy (as tf.io.decode_image gives it), small enough that each of its
# manipulations, statistics and histograms takes under 30 ms.
WORKING_SIDE = 768
STATUS = {"too_large": 413, "unsupported_format": 415}
# A photo endpoint's multipart form carries the file plus its boundaries and headers.
FORM_OVERHEAD_BYTES = 64 * 1024

# A photo endpoint's OpenAPI body: a multipart field `file` or the raw file, as both labs accept.
PHOTO_BODY = {
    "requestBody": {
        "required": True,
        "description": (
            f"The photo ({', '.join(ALLOWED_FORMATS)}, recognised by content) as a multipart "
            "form field `file` (`curl -F file=@dog.jpg`), or the file itself as the body "
            "(`curl --data-binary @dog.jpg -H 'Content-Type: image/jpeg'`)."
        ),
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}

router = APIRouter(prefix="/api/images", tags=["images"])


class UploadedImage(BaseModel):
    id: str
    format: str
    width: int
    height: int
    channels: int
    original_width: int
    original_height: int
    shape: list[int]  # (batch, height, width, channels), as tf.nn.conv2d sees it


_IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "description": (
            f"The image file itself as the body (not a form): {', '.join(ALLOWED_FORMATS)}, "
            "recognised by content, not by name or Content-Type."
        ),
        "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post(
    "",
    status_code=201,
    openapi_extra=_IMAGE_BODY,
    responses={
        413: {"description": "Body over the byte cap, or image over the pixel cap"},
        415: {"description": "Not a JPEG, PNG, GIF, BMP or WebP image by content"},
        422: {"description": "Empty, damaged or truncated image"},
    },
)
async def upload_image(request: Request, store: ImageStoreDep) -> UploadedImage:
    """
    Upload an image; it is decoded (RGB, at most 512 px a side) and kept in memory for a while,
    with the images lab's working copy (as tf.io.decode_image gives it, at most 768 px a side).
    """
    settings = request.app.state.settings
    if request.headers.get("content-type", "").startswith("multipart/"):
        raise HTTPException(415, "Send the image file itself as the request body, not a form.")
    data = await read_capped_body(request, settings.max_upload_bytes)
    decoded = await decode_upload(data, settings, native_side=WORKING_SIDE)
    image_id = store.put(
        StoredImage(
            decoded.pixels, decoded.format, decoded.original_size, decoded.file, decoded.native
        )
    )
    height, width, channels = decoded.pixels.shape
    return UploadedImage(
        id=image_id,
        format=decoded.format,
        width=width,
        height=height,
        channels=channels,
        original_width=decoded.original_size[0],
        original_height=decoded.original_size[1],
        shape=[1, height, width, channels],
    )


async def decode_upload(
    data: bytes, settings: Settings, native_side: int | None = None
) -> DecodedImage:
    """Decodes an uploaded file off the event loop (RGB, at most `STORE_MAX_SIDE` a side); a file
    it refuses is a 413 (too large), a 415 (not an allowed format) or a 422 (empty, damaged)."""
    try:
        return await run_in_threadpool(
            decode_image,
            data,
            max_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_image_pixels,
            max_side=settings.max_image_side,
            channels=3,
            max_output_side=STORE_MAX_SIDE,
            native_side=native_side,
        )
    except ImageRejected as exc:
        if exc.kind == "invalid":
            raise unprocessable(exc.reason) from exc
        raise HTTPException(STATUS[exc.kind], exc.reason) from exc


def photo_cap(settings: Settings) -> int:
    """A photo endpoint's body cap: the upload cap, and room for a form's boundaries."""
    return settings.max_upload_bytes + FORM_OVERHEAD_BYTES


def add_photo_route(router: APIRouter, path: str, endpoint: Callable, **options) -> None:
    """Adds `endpoint` to `router` as `POST path`, taking a photo (`PHOTO_BODY`): its body is
    capped by `photo_cap`, while the lab's JSON endpoints keep the app's JSON cap."""
    router.add_api_route(
        path,
        endpoint,
        methods=["POST"],
        route_class_override=StrictJSONRoute.capped(photo_cap, lambda s: s.max_upload_bytes),
        openapi_extra=PHOTO_BODY,
        **options,
    )


async def decode_photo(request: Request) -> DecodedImage:
    """A photo endpoint's photo (`PHOTO_BODY`: the form field `file`, or the body itself), decoded
    as `decode_upload` decodes it."""
    return await decode_upload(await _photo_bytes(request), request.app.state.settings)


async def _photo_bytes(request: Request) -> bytes:
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        return await request.body()
    async with request.form(max_files=1, max_fields=8) as form:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise unprocessable(
                "file is required: send the photo as the form field `file` (curl -F "
                f"file=@dog.jpg), or as the body itself. Received: fields={sorted(form.keys())}",
                ("body", "file"),
            )
        return await file.read()
