from fastapi.testclient import TestClient

from app.labs import LABS


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_home_lists_every_lab(client: TestClient) -> None:
    html = client.get("/").text
    for lab in LABS:
        assert lab.title in html
    assert 'href="/labs/mlp"' in html


def test_unknown_lab_is_404(client: TestClient) -> None:
    assert client.get("/labs/nope").status_code == 404


def test_plotly_is_served_from_the_python_package(client: TestClient) -> None:
    r = client.get("/vendor/plotly.min.js")
    assert r.status_code == 200
    assert "plotly" in r.text[:2000].lower()


def test_static_traversal_is_refused(client: TestClient) -> None:
    assert client.get("/static/../../etc/passwd").status_code == 404
    assert client.get("/static/%2e%2e/%2e%2e/etc/passwd").status_code == 404
