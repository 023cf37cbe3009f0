"""One body policy and one error shape for every JSON endpoint, found through the lab registry."""

import asyncio

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from app.labs import all_labs
from app.main import create_app
from app.request_limits import StrictJSONRoute, field_name
from app.settings import Settings
from tests.app.json_api import strict_json

MAX_JSON_BYTES = 2048  # the setting, lowered so the test shows it is the one in force

ROUTES = [
    pytest.param(route, id=f"{lab.slug} {route.path}")
    for lab in all_labs()
    if lab.router is not None
    for route in lab.router.routes
    if isinstance(route, APIRoute)
]
JSON_BODIES = [p for p in ROUTES if p.values[0].body_field is not None]


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings(max_json_bytes=MAX_JSON_BYTES)


@pytest.fixture(scope="module")
def client(settings: Settings):
    with TestClient(create_app(settings)) as c:
        yield c


def cap(route: StrictJSONRoute) -> int:
    return route.max_body_bytes or MAX_JSON_BYTES


def test_the_registry_has_json_endpoints() -> None:
    assert len(JSON_BODIES) >= 5  # backprop ×2, descent ×2, convolution ×2


@pytest.mark.parametrize("route", ROUTES)
def test_every_lab_endpoint_uses_the_one_route_class(route: APIRoute) -> None:
    assert isinstance(route, StrictJSONRoute)


@pytest.mark.parametrize("route", JSON_BODIES)
def test_a_declared_body_over_the_cap_is_413_before_a_byte_is_read(
    client: TestClient, route: StrictJSONRoute
) -> None:
    status, body, reads = asyncio.run(_call(client.app, route.path, declared=cap(route) + 1))

    assert status == 413
    assert reads == 0
    assert f"at most {cap(route):,} bytes" in strict_json(body)["detail"]


@pytest.mark.parametrize("route", JSON_BODIES)
def test_a_streamed_body_over_the_cap_is_413(client: TestClient, route: StrictJSONRoute) -> None:
    chunks = (b" " * 1024 for _ in range(cap(route) // 1024 + 2))  # chunked: no Content-Length

    r = client.post(route.path, content=chunks, headers={"content-type": "application/json"})

    assert r.status_code == 413
    assert "at least" in r.json()["detail"]


@pytest.mark.parametrize("route", JSON_BODIES)
@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_a_422_in_the_one_shape(
    client: TestClient, route: StrictJSONRoute, literal: str
) -> None:
    r = client.post(
        route.path,
        content=f'{{"probe": {literal}}}',
        headers={"content-type": "application/json"},
    )

    assert r.status_code == 422
    errors = strict_json(r.text)["detail"]
    assert_one_shape(errors)
    assert any("finite numbers only" in e["msg"] for e in errors), errors


def test_a_body_that_is_not_json_anyway_is_the_usual_422(client: TestClient) -> None:
    r = client.post(
        "/api/backprop", content='{"x": NaN, ', headers={"content-type": "application/json"}
    )

    assert r.status_code == 422
    assert strict_json(r.text)["detail"][0]["msg"].startswith("JSON decode error")


def test_a_non_finite_number_is_named_with_its_range(client: TestClient) -> None:
    r = client.post(
        "/api/backprop/train",
        content='{"x": 1, "y": 1, "w": [1], "lr": -Infinity}',
        headers={"content-type": "application/json"},
    )

    assert r.status_code == 422
    assert strict_json(r.text)["detail"][0]["msg"].startswith(
        "lr must be a finite number in [0.001, 100]. Received: lr=-inf"
    )


@pytest.mark.parametrize(
    ("url", "body", "message"),
    [
        (
            "/api/convolve",
            {"input": {"sample": "shapes"}, "kernels": [[[1, 1e9], [0, 1]]]},
            "kernels[0][0][1] must be a finite number in [-1000, 1000]. "
            "Received: kernels[0][0][1]=1000000000.0",
        ),
        (
            "/api/convolve",
            {"input": {"array": [[1, 2], [3, "a"]]}, "kernels": [[[1]]]},
            "input.array[1][1] must be a finite number in [-1e+06, 1e+06]. "
            "Received: input.array[1][1]='a'",
        ),
        (
            "/api/convolve",
            {"input": {"sample": "shapes"}, "kernels": [[[1]]], "padding": "FULL"},
            "padding: Input should be 'SAME' or 'VALID'. Received: padding='FULL'",
        ),
        (
            "/api/descent",
            {"start": [0, 0], "learning_rates": [0.1], "steps": 5, "probe": True},
            "probe: Extra inputs are not permitted. Received: probe=True",
        ),
    ],
)
def test_a_message_names_the_field_the_value_and_the_rule(
    client: TestClient, url: str, body: dict, message: str
) -> None:
    r = client.post(url, json=body)

    assert r.status_code == 422
    errors = strict_json(r.text)["detail"]
    assert_one_shape(errors)
    assert [e["msg"] for e in errors] == [message]


def test_a_problem_found_after_validation_is_a_422_in_the_same_shape(client: TestClient) -> None:
    body = {"input": {"array": [[1, 2]]}, "kernels": [[[1]]], "stride": 3}

    r = client.post("/api/convolve", json=body)

    assert r.status_code == 422
    assert_one_shape(strict_json(r.text)["detail"])


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status"),
    [
        (
            "post",
            "/api/convolve",
            {"json": {"input": {"image_id": "0" * 32}, "kernels": [[[1]]]}},
            404,
        ),
        (
            "post",
            "/api/images",
            {"content": b"x" * 100, "headers": {"content-type": "image/png"}},
            415,
        ),
        ("post", "/api/backprop", {"content": b"{" * 4000}, 413),
        ("get", "/api/nope", {}, 404),
    ],
)
def test_other_errors_are_a_sentence(
    client: TestClient, method: str, url: str, kwargs: dict, status: int
) -> None:
    r = getattr(client, method)(url, **kwargs)

    assert r.status_code == status
    assert isinstance(r.json()["detail"], str) and r.json()["detail"]


@pytest.mark.parametrize(
    ("loc", "name"),
    [
        (["body", "kernels", 0, 1, 2], "kernels[0][1][2]"),
        (["body", "input", "array", "list[list[constrained-float]]", 3, 1], "input.array[3][1]"),
        (["query", "x_min"], "x_min"),
        (["body"], ""),
    ],
)
def test_field_names_as_a_page_writes_them(loc: list, name: str) -> None:
    assert field_name(loc) == name


def assert_one_shape(errors: list) -> None:
    assert errors and isinstance(errors, list)
    for e in errors:
        assert {"loc", "msg", "type"} <= e.keys() <= {"loc", "msg", "type", "input"}
        assert isinstance(e["loc"], list) and isinstance(e["msg"], str) and e["msg"]


async def _call(app, path: str, declared: int) -> tuple[int, bytes, int]:
    """POSTs to the ASGI app with a Content-Length of `declared`, counting the body reads."""
    reads, status, body = 0, 0, b""

    async def receive() -> dict:
        nonlocal reads
        reads += 1
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        nonlocal status, body
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body += message.get("body", b"")

    headers = [
        (b"host", b"testserver"),
        (b"content-type", b"application/json"),
        (b"content-length", str(declared).encode()),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    return status, body, reads
