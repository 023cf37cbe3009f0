"""HTML pages and the files they load: the lab list, one page per lab, static files, plotly.js."""

import gzip
import hashlib
from functools import cache

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from plotly.offline import get_plotlyjs

from app.labs import all_labs, find_lab

router = APIRouter(tags=["pages"])


class StaticAssets(StaticFiles):
    """The static files, revalidated on each use: an unchanged file costs a 304, an edit shows."""

    def file_response(self, *args, **kwargs) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def home(request: Request) -> HTMLResponse:
    templates = request.app.state.templates
    return templates.TemplateResponse(
        request=request, name="index.html", context={"labs": all_labs()}
    )


@router.get("/labs/{slug}", response_class=HTMLResponse, include_in_schema=False)
def lab_page(request: Request, slug: str) -> HTMLResponse:
    lab = find_lab(slug)
    templates = request.app.state.templates
    if lab is not None and lab.ready:
        return templates.TemplateResponse(
            request=request, name=f"labs/{slug}.html", context={"lab": lab, "labs": all_labs()}
        )
    # A browser gets a page either way: a planned lab says it is coming, an unknown one is a 404.
    return templates.TemplateResponse(
        request=request,
        name="coming_soon.html",
        context={"planned": lab, "slug": slug, "labs": all_labs()},
        status_code=200 if lab is not None else 404,
    )


@router.get("/healthz", tags=["health"])
def healthz(request: Request) -> dict[str, str | int]:
    """The server answers; `compiling` counts the background traces and compiles still to do
    (a fresh server warms every lab up first, and is slower until they are done)."""
    return {"status": "ok", "compiling": request.app.state.live.compiling}


@cache
def _plotly() -> dict[str, tuple[bytes, str]]:
    """plotly.js as sent, by content coding: its bytes and their ETag. Compressed once."""
    raw = get_plotlyjs().encode()
    packed = gzip.compress(raw, compresslevel=9, mtime=0)
    return {
        coding: (body, f'"{hashlib.sha256(body).hexdigest()[:20]}"')
        for coding, body in (("identity", raw), ("gzip", packed))
    }


@router.get("/vendor/plotly.min.js", include_in_schema=False)
def plotly_js(request: Request) -> Response:
    # Shipped by the plotly Python package, so no copied file and no CDN. 4.8 MB, 1.4 MB gzipped:
    # a class of phones on one Wi-Fi fetches it once a day and revalidates it with its ETag.
    coding = "gzip" if "gzip" in request.headers.get("accept-encoding", "") else "identity"
    body, etag = _plotly()[coding]
    headers = {"Cache-Control": "public, max-age=86400", "ETag": etag, "Vary": "Accept-Encoding"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    if coding == "gzip":
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type="text/javascript", headers=headers)
