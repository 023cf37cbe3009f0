"""The process's XLA build budget: TensorFlow never frees a build, so past `max_builds` the
per-shape caches students fill (the MLP's trainers, the RNN's builds) make no more."""

import logging

from models import rnn, xla_budget
from tests.models.test_mlp import _batch, _net, _trainer


def test_the_budget_counts_builds_and_refuses_past_its_limit(caplog, monkeypatch) -> None:
    monkeypatch.setattr(xla_budget, "_spent_said", False)  # as in a process not yet refused
    limit = xla_budget.made() + 1
    assert xla_budget.left(limit) and xla_budget.left(None)
    assert xla_budget.take(limit)
    assert xla_budget.made() == limit
    with caplog.at_level(logging.WARNING, "models.xla_budget"):
        assert not xla_budget.left(limit)
        assert not xla_budget.take(limit)
        assert not xla_budget.left(limit)
    assert xla_budget.made() == limit  # a refusal is not a build
    refusals = [r for r in caplog.records if "max_xla_builds" in r.getMessage()]
    assert len(refusals) == 1  # said once: from then on new shapes train slower
    assert xla_budget.take(None)  # no limit: a test's or a tool's own build


def test_an_mlp_trainer_past_the_budget_stays_plain() -> None:
    net = _net([3, 3])
    trainer = _trainer(net["arch"])
    batch = _batch([net], 5)
    trainer.compile_xla(batch, max_builds=xla_budget.made())
    assert not trainer.xla_ready
    _, metrics, _ = trainer(batch)  # it still trains, on its plain trace
    assert metrics.shape == (1, 4)
    trainer.compile_xla(batch, max_builds=xla_budget.made() + 1)
    assert trainer.xla_ready == {1}


def test_an_rnn_shape_past_the_budget_is_not_built() -> None:
    data = rnn.make_dataset("first_bit", 12, seed=3, delay=5)
    stack = rnn.new_stack("gru", 5, data, seed=3)
    rnn.compile_xla(stack.shape, max_builds=xla_budget.made())
    assert not rnn.is_compiled(stack.shape)
    assert rnn.train(stack, 3, learning_rate=0.01, seed=3).finite
    rnn.compile_xla(stack.shape, max_builds=xla_budget.made() + 1)
    assert rnn.is_compiled(stack.shape)
