"""The gradient-descent lab's endpoints: runs, sweep, the surface grid, and bad input."""

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from models import descent as gd
from tests.app.json_api import strict_json

BODY = {"surface": "quadratic", "start": [-3.2, 2.4], "learning_rates": [0.02, 0.2, 1.0, 2.1]}


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Settings())) as c:
        yield c


def test_runs_match_the_model_and_the_overshooting_one_is_marked(client: TestClient) -> None:
    r = client.post("/api/descent", json={**BODY, "steps": 150})

    assert r.status_code == 200
    data = strict_json(r.text)
    expected = gd.descend(
        "quadratic", gd.check_surface("quadratic"), BODY["start"], BODY["learning_rates"], 150
    )
    assert data["runs"] == expected
    assert [run["diverged_at"] is not None for run in data["runs"]] == [False, False, False, True]
    surface = data["surface"]
    assert surface["critical_lr"] == pytest.approx(2.0) and surface["critical_exact"] is True
    assert len(surface["loss"]) == gd.GRID_SIDE and len(surface["loss"][0]) == gd.GRID_SIDE
    assert surface["minimum"] == [0.0, 0.0]


@pytest.mark.parametrize("surface", ["linear_regression", "nonconvex"])
def test_every_surface_and_optimizer_answers(client: TestClient, surface: str) -> None:
    for optimizer in gd.OPTIMIZERS:
        body = {"surface": surface, "start": [0.5, 0.5], "learning_rates": [0.1], "steps": 20}
        r = client.post(
            "/api/descent", json={**body, "optimizer": optimizer, "include_surface": False}
        )
        assert r.status_code == 200
        data = strict_json(r.text)
        assert data["surface"] is None and len(data["runs"][0]["path"]) == 21


def test_sweep_finds_the_cliff_at_the_critical_rate(client: TestClient) -> None:
    body = {"start": [-3.2, 2.4], "lr_min": 0.01, "lr_max": 10.0, "count": 20, "steps": 200}
    r = client.post("/api/descent/sweep", json=body)

    assert r.status_code == 200
    data = strict_json(r.text)
    assert len(data["learning_rates"]) == 20 and data["critical_lr"] == pytest.approx(2.0)
    for lr, final, at in zip(
        data["learning_rates"], data["final_loss"], data["diverged_at"], strict=True
    ):
        assert (at is not None) == (lr > 2.0)
        assert (final is None) == (lr > 2.0)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"learning_rates": [1e9]},
            "learning_rates[0] must be a finite number in [1e-06, 1000]. "
            "Received: learning_rates[0]=1000000000.0",
        ),
        ({"learning_rates": [-1]}, "Received: learning_rates[0]=-1"),
        ({"learning_rates": []}, "learning_rates must be a list of 1 to 32 numbers"),
        ({"steps": 10**6}, "steps must be an integer in [1, 2000]. Received: steps=1000000"),
        ({"start": [0, 9]}, "start[1] must be a finite number in [-4, 4]. Received: start[1]=9"),
        ({"start": [1]}, "start must be two numbers"),
        ({"condition": 1000}, "condition must be a finite number in [1, 100]"),
        ({"optimizer": "lbfgs"}, "Input should be 'sgd', 'momentum', 'rmsprop' or 'adam'"),
        ({"extra": 1}, "Extra inputs are not permitted"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(
    client: TestClient, change: dict, message: str
) -> None:
    r = client.post("/api/descent", json={**BODY, **change})

    assert r.status_code == 422
    assert message in " ".join(e["msg"] for e in strict_json(r.text)["detail"])


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_a_422_not_a_500(client: TestClient, literal: str) -> None:
    body = f'{{"start": [0, 0], "learning_rates": [{literal}]}}'
    r = client.post("/api/descent", content=body, headers={"content-type": "application/json"})

    assert r.status_code == 422
    assert "finite numbers only" in strict_json(r.text)["detail"][0]["msg"]


def test_sweep_rejects_a_reversed_or_absurd_range(client: TestClient) -> None:
    body = {"start": [0, 0], "lr_min": 1.0, "lr_max": 0.1}
    assert "lr_max must be above lr_min" in client.post("/api/descent/sweep", json=body).text
    r = client.post("/api/descent/sweep", json={**body, "lr_max": 1e9})
    assert r.status_code == 422 and "lr_max must be a finite number" in r.text


def test_openapi_documents_both_endpoints(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/descent", "/api/descent/sweep"} <= paths.keys()
