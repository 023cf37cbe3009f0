"""Pages for every lab in the registry, the files they load (compressed, cached), and /docs."""

import gzip
import re
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from app.labs import all_labs
from app.main import create_app
from app.routes import pages
from app.settings import Settings

LABS = [pytest.param(lab, id=lab.slug) for lab in all_labs()]
GZIP = {"accept-encoding": "gzip"}


@pytest.fixture(scope="module")
def client():
    # One app for the module: these tests only read.
    with TestClient(create_app(Settings())) as c:
        yield c


def test_healthz(client: TestClient) -> None:
    health = client.get("/healthz").json()
    assert health["status"] == "ok"
    assert isinstance(health["compiling"], int) and health["compiling"] >= 0


def test_home_lists_every_lab(client: TestClient) -> None:
    html = client.get("/").text
    for lab in all_labs():
        assert lab.title in html
    assert 'href="/labs/mlp"' in html


@pytest.mark.parametrize("lab", LABS)
def test_every_lab_has_a_page(client: TestClient, lab) -> None:
    r = client.get(f"/labs/{lab.slug}")

    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert lab.title in r.text
    assert ("coming soon" in r.text) is not lab.ready


def test_a_planned_lab_says_it_is_coming(client: TestClient, monkeypatch) -> None:
    # Every lab in the registry may have its page: a built one, marked planned, stands in.
    stand_in = replace(all_labs()[-1], ready=False)
    find = pages.find_lab
    monkeypatch.setattr(
        pages, "find_lab", lambda slug: stand_in if slug == stand_in.slug else find(slug)
    )
    planned = [lab for lab in all_labs() if not lab.ready] + [stand_in]
    for lab in planned:
        html = client.get(f"/labs/{lab.slug}").text
        assert f"<h1>{lab.title}: coming soon</h1>" in html and lab.summary in html
        assert '"detail"' not in html


def test_unknown_lab_is_404(client: TestClient) -> None:
    r = client.get("/labs/nope")

    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "No lab is called “nope”" in r.text and 'href="/"' in r.text


def test_an_unknown_slug_is_shown_escaped(client: TestClient) -> None:
    r = client.get("/labs/<script>x")

    assert r.status_code == 404
    assert "<script>x" not in r.text and "&lt;script&gt;x" in r.text


@pytest.mark.parametrize("lab", [p for p in LABS if p.values[0].choices and p.values[0].router])
def test_choices_are_the_apis_own_values(client: TestClient, lab) -> None:
    """Each select's values are what the lab's endpoints accept for that field, labelled."""
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    enums: dict[str, list] = {}
    for schema in schemas.values():
        for name, prop in schema.get("properties", {}).items():
            if "enum" in prop:
                enums.setdefault(name, []).append(sorted(prop["enum"]))
    for field, pairs in lab.choices.items():
        assert sorted(value for value, _ in pairs) in enums[field], field
        assert all(label for _, label in pairs)


def test_plotly_is_served_from_the_python_package(client: TestClient) -> None:
    r = client.get("/vendor/plotly.min.js")
    assert r.status_code == 200
    assert "plotly" in r.text[:2000].lower()


def test_plotly_goes_out_gzipped_and_is_revalidated_by_etag(client: TestClient) -> None:
    plain = client.get("/vendor/plotly.min.js", headers={"accept-encoding": "identity"})
    with client.stream("GET", "/vendor/plotly.min.js", headers=GZIP) as r:
        sent = b"".join(r.iter_raw())

    assert r.headers["content-encoding"] == "gzip"
    assert gzip.decompress(sent) == plain.content
    assert len(sent) < len(plain.content) / 3  # 4.8 MB → about 1.4 MB
    assert (
        "max-age" in r.headers["cache-control"] and "accept-encoding" in r.headers["vary"].lower()
    )
    again = client.get(
        "/vendor/plotly.min.js", headers={**GZIP, "if-none-match": r.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""
    assert plain.headers["etag"] != r.headers["etag"]  # one ETag per representation


@pytest.mark.parametrize(
    "url", ["/", "/labs/descent", "/static/css/playground.css", "/openapi.json"]
)
def test_pages_and_static_files_are_compressed(client: TestClient, url: str) -> None:
    with client.stream("GET", url, headers=GZIP) as r:
        sent = b"".join(r.iter_raw())

    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert len(sent) < len(gzip.decompress(sent))


def test_static_files_are_revalidated_not_refetched(client: TestClient) -> None:
    r = client.get("/static/css/playground.css")

    assert r.headers["cache-control"] == "no-cache"
    again = client.get("/static/css/playground.css", headers={"if-none-match": r.headers["etag"]})
    assert again.status_code == 304


@pytest.mark.parametrize("url", ["/docs", "/redoc"])
def test_api_docs_load_only_local_files(client: TestClient, url: str) -> None:
    html = client.get(url).text
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)

    assert any(a.endswith(".js") for a in assets)
    for asset in assets:
        assert asset.startswith("/") and not asset.startswith("//"), asset
        assert client.get(asset).status_code == 200, asset
    assert "cdn" not in html.lower() and "https://" not in html


def test_static_traversal_is_refused(client: TestClient) -> None:
    assert client.get("/static/../../etc/passwd").status_code == 404
    assert client.get("/static/%2e%2e/%2e%2e/etc/passwd").status_code == 404
