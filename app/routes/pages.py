"""HTML pages: the lab list and one page per live lab."""

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from plotly.offline import get_plotlyjs

from app.labs import LABS, find_lab

router = APIRouter(tags=["pages"])


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def home(request: Request) -> HTMLResponse:
    templates = request.app.state.templates
    return templates.TemplateResponse(request=request, name="index.html", context={"labs": LABS})


@router.get("/labs/{slug}", response_class=HTMLResponse, include_in_schema=False)
def lab_page(request: Request, slug: str) -> HTMLResponse:
    lab = find_lab(slug)
    if lab is None or not lab.live:
        raise HTTPException(404, f"No lab named {slug!r} is live yet.")
    templates = request.app.state.templates
    return templates.TemplateResponse(
        request=request, name=f"labs/{slug}.html", context={"lab": lab, "labs": LABS}
    )


@router.get("/healthz", tags=["health"])
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/vendor/plotly.min.js", include_in_schema=False)
def plotly_js() -> Response:
    # Shipped by the plotly Python package, so no copied file and no CDN.
    return Response(
        get_plotlyjs(),
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=86400"},
    )
