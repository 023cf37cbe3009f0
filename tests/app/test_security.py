"""The server against a hostile page or client: the Origin check on every socket route, the
security headers on every response, no inline script, uploads never echoed, no user string
reaching the file system, secrets compared in constant time."""

import ast
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocketDisconnect

from app.labs import all_labs
from app.main import create_app
from app.routes import ROUTERS
from app.settings import ROOT, Settings

LIVE = [lab.slug for lab in all_labs() if lab.session is not None]
PAGES = ["/", *(f"/labs/{lab.slug}" for lab in all_labs()), "/labs/nope"]
FOREIGN = ["https://evil.example", "null", "http://testserver.evil", "http://testserver:1"]


def socket_paths() -> list[str]:
    """A path of every WebSocket route `create_app` includes, its parameters filled in."""
    routers = [*ROUTERS, *(lab.router for lab in all_labs() if lab.router is not None)]
    routes = [r for router in routers for r in router.routes if isinstance(r, WebSocketRoute)]
    assert len(routes) >= 2, "the live labs' socket and the CNN job socket at least"
    return [
        re.sub(r"\{(\w+)(:\w+)?\}", lambda m: LIVE[0] if m[1] == "slug" else "0" * 32, r.path)
        for r in routes
    ]


def handshake_close(client: TestClient, path: str, origin: str | None) -> int | None:
    """The code a socket is closed with during or right after its handshake; None if it stays
    open (accepted, and saying something)."""
    headers = {} if origin is None else {"origin": origin}
    try:
        with client.websocket_connect(path, headers=headers) as ws:
            ws.receive()
    except WebSocketDisconnect as e:
        return e.code
    return None


# --- the Origin check ------------------------------------------------------------------------


@pytest.mark.parametrize("origin", FOREIGN)
def test_every_socket_route_refuses_a_foreign_origin(origin: str) -> None:
    # `null` is refused even when someone lists it: any page can make its origin `null`.
    client = TestClient(create_app(Settings(allowed_origins=["null"])))
    for path in socket_paths():
        assert handshake_close(client, path, origin) == 1008, path


@pytest.mark.parametrize(
    ("origin", "settings", "allowed"),
    [
        ("http://testserver", {}, True),
        ("https://testserver", {}, True),
        ("http://lecture.example", {"allowed_origins": ["http://lecture.example"]}, True),
        ("http://lecture.example", {}, False),
        (None, {"allow_missing_origin": True}, True),
        (None, {"allow_missing_origin": False}, False),
    ],
)
def test_same_host_and_the_allowlist_are_accepted(
    origin: str | None, settings: dict, allowed: bool
) -> None:
    # The job socket checks the origin before the job: an unknown job is told so only if allowed.
    # (A live lab's own page is accepted in tests/app/test_metrics.py, even past the session cap.)
    app = create_app(Settings(**settings))
    code = handshake_close(TestClient(app), "/ws/cnn/" + "0" * 32, origin)
    assert code == (4404 if allowed else 1008)


# --- headers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plain() -> TestClient:
    """A client without the lifespan: pages, headers and uploads need no trained model."""
    return TestClient(create_app(Settings()))


@pytest.mark.parametrize(
    "path",
    [*PAGES, "/healthz", "/metrics", "/openapi.json", "/static/css/playground.css", "/nope"],
)
def test_every_response_carries_the_security_headers(plain: TestClient, path: str) -> None:
    headers = plain.get(path).headers
    policy = headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert "connect-src 'self' ws://testserver wss://testserver" in policy
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_api_docs_have_their_own_policy(plain: TestClient, path: str) -> None:
    response = plain.get(path)
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "connect-src" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"


def test_a_host_header_cannot_write_into_the_policy(plain: TestClient) -> None:
    policy = plain.get("/", headers={"host": "a; script-src *"}).headers["content-security-policy"]
    assert "script-src *" not in policy and policy.endswith("connect-src 'self'")


class _PageScripts(HTMLParser):
    """Collects what the policy would block: inline scripts, on* handlers, javascript: URLs."""

    def __init__(self):
        super().__init__()
        self.inline: list[str] = []
        self.in_script = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script":
            self.in_script = "src" not in attributes
        for name, value in attributes.items():
            if name.startswith("on") or (value or "").strip().lower().startswith("javascript:"):
                self.inline.append(f"<{tag} {name}={value!r}>")

    def handle_endtag(self, tag):
        if tag == "script":
            self.in_script = False

    def handle_data(self, data):
        if self.in_script and data.strip():
            self.inline.append(f"<script>{data.strip()[:60]}")


@pytest.mark.parametrize("path", PAGES)
def test_pages_have_no_inline_script(plain: TestClient, path: str) -> None:
    parser = _PageScripts()
    parser.feed(plain.get(path).text)
    assert parser.inline == []


# --- uploads and the file system -------------------------------------------------------------


def _png_with_payload() -> tuple[bytes, bytes]:
    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, "PNG")
    payload = b"<script>alert(document.cookie)</script>"
    return buffer.getvalue() + payload, payload


def test_an_upload_comes_back_only_as_re_encoded_pixels(plain: TestClient) -> None:
    # A PNG with HTML after its end: a polyglot a browser could sniff as a page if echoed.
    upload, payload = _png_with_payload()
    created = plain.post("/api/images", content=upload, headers={"content-type": "text/html"})
    assert created.status_code == 201, created.text
    image_id = created.json()["id"]
    stored = plain.app.state.image_store.get(image_id)
    assert stored.pixels.shape == (24, 32, 3)
    assert not any(isinstance(v, bytes) for v in vars(stored).values())
    served = plain.post("/api/image-lab/pipeline.png", json={"source": {"image_id": image_id}})
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert payload not in served.content and served.content != upload
    assert Image.open(io.BytesIO(served.content)).size == (32, 24)


@pytest.mark.parametrize(
    "path",
    [
        "/static/../app/settings.py",
        "/static/%2e%2e/app/settings.py",
        "/static/..%2fapp%2fsettings.py",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/api/image-lab/samples/..%2f..%2fapp%2fsettings.py",
    ],
)
def test_no_path_outside_the_static_folder_is_served(plain: TestClient, path: str) -> None:
    response = plain.get(path)
    assert response.status_code == 404
    assert b"BaseSettings" not in response.content and b"root:" not in response.content


def test_a_breed_name_never_becomes_a_path(tmp_path: Path) -> None:
    # Breeds are looked up among the folder's own listing; a name is never joined to a path.
    for folder in ["Images/n02085620-Chihuahua", "Images/n02110958-pug", "secret"]:
        (tmp_path / folder).mkdir(parents=True)
        Image.new("RGB", (40, 30), "tan").save(tmp_path / folder / "a.jpg")
    client = TestClient(create_app(Settings(datasets_dir=tmp_path)))
    breeds = [b["name"] for b in client.get("/api/cnn/catalog").json()["breeds"]]
    assert breeds == ["Chihuahua", "pug"]
    for name in ["../secret", "../../secret", str(tmp_path / "secret"), "Images/../secret"]:
        response = client.post("/api/cnn/datasets", json={"breeds": ["Chihuahua", name]})
        assert response.status_code == 422, name
        assert "unknown" in response.json()["detail"][0]["msg"]


def _compared_secrets(tree: ast.AST) -> list[int]:
    """Lines where a name or attribute holding a token or secret is compared with == or !=."""

    def secret(node: ast.AST) -> bool:
        name = getattr(node, "id", None) or getattr(node, "attr", None) or ""
        return bool(re.search(r"token|secret|password|passcode|signature", name, re.I))

    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Compare)
        and any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops)
        and any(secret(side) for side in [node.left, *node.comparators])
    ]


def test_the_secret_scan_finds_a_plain_comparison() -> None:
    assert _compared_secrets(ast.parse("ok = given_token == room.token")) == [1]
    assert _compared_secrets(ast.parse("ok = hmac.compare_digest(given_token, token)")) == []


def test_secrets_are_compared_in_constant_time() -> None:
    # `==` returns at the first differing byte, so its timing tells a guesser how far they got.
    found = {
        str(path.relative_to(ROOT)): lines
        for path in sorted((ROOT / "app").rglob("*.py"))
        if (lines := _compared_secrets(ast.parse(path.read_text())))
    }
    assert found == {}, "use hmac.compare_digest"
