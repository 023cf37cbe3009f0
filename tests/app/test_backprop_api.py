"""The backpropagation lab's JSON endpoints: answers, OpenAPI schema, and bad input."""

import json
import math

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from models import backprop as bp
from tests.app.json_api import strict_json

COURSE = {"x": 1.0, "y": 1.0, "w": [0.5, -1.0, 2.0]}


@pytest.fixture(scope="module")
def client():
    # One app for the module: these tests only read, and dozens of them share it.
    with TestClient(create_app(Settings())) as c:
        yield c


def post_raw(client: TestClient, url: str, body: str):
    return client.post(url, content=body, headers={"content-type": "application/json"})


def test_course_chain_answers_forward_values_and_gradients_three_ways(client: TestClient) -> None:
    r = client.post("/api/backprop", json=COURSE)

    assert r.status_code == 200
    data = strict_json(r.text)
    assert set(data["forward"]) == {"L1", "L2", "L3", "loss"}
    assert data == bp.backprop(**COURSE)
    assert [g["param"] for g in data["gradients"]] == ["w1", "w2", "w3"]
    for g in data["gradients"]:
        assert {"chain", "tape", "finite_difference"} <= g.keys()
        assert abs(g["chain"] - g["finite_difference"]) < 1e-6
        assert g["agree"] is True


def test_options_bias_activation_loss_and_depth(client: TestClient) -> None:
    body = {
        "x": -0.5,
        "y": 0.25,
        "w": [1.0, -2.0, 0.5, 1.5, -1.0],
        "b": [0.1, 0.0, -0.3, 0.2, 0.0],
        "activation": "tanh",
        "loss": "squared_error",
    }

    data = client.post("/api/backprop", json=body).json()

    assert list(data["forward"]) == ["L1", "L2", "L3", "L4", "L5", "loss"]
    assert [g["param"] for g in data["gradients"]] == [f"w{i}" for i in range(1, 6)] + [
        f"b{i}" for i in range(1, 6)
    ]
    assert data["forward"]["loss"] == pytest.approx((data["forward"]["L5"] - 0.25) ** 2)
    assert all(g["agree"] for g in data["gradients"])


def test_saturated_output_sends_null_not_infinity(client: TestClient) -> None:
    r = client.post("/api/backprop", json={"x": 1000, "y": 0, "w": [1000, 1000, 1000]})

    assert r.status_code == 200
    data = strict_json(r.text)
    assert data["loss_derivative"] is None  # 1/(1 − L3) overflows float64
    assert data["deltas"][2] == pytest.approx(1.0)  # loss'·L3' = L3 − y stays finite


def _chain(**changes) -> str:
    """A chain's JSON body: x = 1, y = 1, w = [1], with `changes`."""
    return json.dumps({"x": 1, "y": 1, "w": [1], **changes})


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (_chain(x=math.nan), "x", "x must be a finite number in [-1000, 1000]. Received: x=nan"),
        (_chain(w=[1, math.inf]), "w", "Received: w[1]=inf"),
        (_chain(w=[-math.inf]), "w", "Received: w[0]=-inf"),
        ('{"x": 1e309, "y": 1, "w": [1]}', "x", "Received: x=inf"),
        (_chain(x="abc"), "x", "Received: x='abc'"),
        (_chain(x=True), "x", "Received: x=True"),
        (_chain(x=None), "x", "Received: x=None"),
        (_chain(x=10**400), "x", "Received: x=<integer of 401 digits>"),
        (_chain(y=2), "y", "y must be a finite number in [0, 1]. Received: y=2"),
        (_chain(w=[1e6]), "w", "[-1000, 1000]. Received: w[0]=1000000.0"),
        (_chain(w=[]), "w", "1 to 10 numbers, one per layer"),
        (_chain(w=[1] * 11), "w", "(depth ≤ 10). Received: len(w)=11"),
        (_chain(w=5), "w", "w must be a list of numbers"),
        (_chain(w=[1, 2], b=[0]), "b", "Received: len(b)=1"),
        (_chain(depth=1000000), "depth", "Extra inputs are not permitted"),
        (_chain(activation="softmax"), "activation", "'sigmoid', 'tanh' or 'relu'"),
        ('{"y": 1, "w": [1]}', "x", "Field required"),
    ],
)
def test_bad_input_is_a_clear_422(client: TestClient, body: str, field: str, message: str) -> None:
    r = post_raw(client, "/api/backprop", body)

    assert r.status_code == 422
    errors = strict_json(r.text)["detail"]
    assert any(e["loc"][-1] == field and message in e["msg"] for e in errors), errors


@pytest.mark.parametrize("body", ["hello", "null", "[]", '"w"', "{"])
def test_bodies_that_are_not_a_chain_are_refused(client: TestClient, body: str) -> None:
    r = post_raw(client, "/api/backprop", body)

    assert r.status_code == 422
    assert strict_json(r.text)["detail"]


def test_depth_of_a_million_is_refused_before_it_is_read(client: TestClient) -> None:
    body = json.dumps({"x": 1, "y": 1, "w": [0] * 10**6})

    r = post_raw(client, "/api/backprop", body)

    assert r.status_code == 413
    assert "at most 16,384 bytes" in r.json()["detail"]


def test_train_returns_the_loss_and_weights_of_every_step(client: TestClient) -> None:
    r = client.post("/api/backprop/train", json={**COURSE, "lr": 0.5, "steps": 20})

    assert r.status_code == 200
    run = strict_json(r.text)
    assert run["steps_done"] == 20 and run["stopped"] is None and run["b"] is None
    assert len(run["loss"]) == len(run["w"]) == 21
    assert run["loss"][0] == pytest.approx(bp.backprop(**COURSE)["forward"]["loss"])
    assert run["loss"][-1] < run["loss"][0]


def test_train_stops_early_and_says_why(client: TestClient) -> None:
    body = {
        "x": 10,
        "y": 0,
        "w": [100] * 4,
        "b": [1] * 4,
        "activation": "relu",
        "lr": 100,
        "steps": 5,
    }

    run = strict_json(client.post("/api/backprop/train", json=body).text)

    assert run["steps_done"] == 0 and "step 1" in run["stopped"]


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"lr": 0}, "lr", "lr must be a finite number in [0.001, 100]. Received: lr=0"),
        ({"lr": 1e30}, "lr", "Received: lr=1e+30"),
        ({"steps": 0}, "steps", "steps must be an integer in [1, 500]. Received: steps=0"),
        ({"steps": 10**9}, "steps", "Received: steps=1000000000"),
        ({"steps": 2.5}, "steps", "Received: steps=2.5"),
    ],
)
def test_train_refuses_bad_settings(
    client: TestClient, extra: dict, field: str, message: str
) -> None:
    r = client.post("/api/backprop/train", json={**COURSE, **extra})

    assert r.status_code == 422
    assert any(e["loc"][-1] == field and message in e["msg"] for e in r.json()["detail"])


def test_train_refuses_nan_learning_rate(client: TestClient) -> None:
    r = post_raw(client, "/api/backprop/train", '{"x": 1, "y": 1, "w": [1], "lr": NaN}')

    assert r.status_code == 422
    assert "Received: lr=nan" in strict_json(r.text)["detail"][0]["msg"]


def test_openapi_documents_both_endpoints(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()

    chain = schema["paths"]["/api/backprop"]["post"]
    assert {"200", "413", "422"} <= chain["responses"].keys()
    components = schema["components"]["schemas"]
    assert set(components["ChainRequest"]["properties"]) == {
        "x",
        "y",
        "w",
        "b",
        "activation",
        "loss",
    }
    assert components["ChainRequest"]["properties"]["w"]["maxItems"] == bp.MAX_DEPTH
    assert {"forward", "layers", "loss_derivative", "deltas", "gradients"} <= set(
        components["ChainResponse"]["properties"]
    )
    assert {"chain", "tape", "finite_difference"} <= set(components["Gradient"]["properties"])
    assert "/api/backprop/train" in schema["paths"]


def test_lab_page_is_live(client: TestClient) -> None:
    r = client.get("/labs/backprop")

    assert r.status_code == 200
    assert "Backpropagation, step by step" in r.text
    assert "/vendor/plotly.min.js" in r.text and "js/labs/backprop.js" in r.text
    assert 'href="/labs/backprop"' in client.get("/").text
