"""Tests for radlas_monai.handlers.roles.engine_role (MONAI evaluators detected without importing MONAI)."""

from __future__ import annotations

import sys
import types

import pytest

from radlas_monai.handlers.roles import engine_role


class FakeEvaluator:
    """Stands in for ``monai.engines.evaluator.Evaluator``."""


class FakeSupervisedEvaluator(FakeEvaluator):
    pass


@pytest.fixture
def fake_monai_evaluator(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("monai.engines.evaluator")
    module.Evaluator = FakeEvaluator
    monkeypatch.setitem(sys.modules, "monai.engines.evaluator", module)


@pytest.mark.parametrize("engine, expected", [[FakeSupervisedEvaluator(), "evaluator"], [object(), "trainer"]])
def test_detected_from_monai_class(fake_monai_evaluator: None, engine: object, expected: str) -> None:
    assert engine_role(engine) == expected


def test_explicit_role_wins_and_is_validated(fake_monai_evaluator: None) -> None:
    assert engine_role(FakeSupervisedEvaluator(), "trainer") == "trainer"
    assert engine_role(object(), "evaluator") == "evaluator"
    with pytest.raises(ValueError, match="'validator'"):
        engine_role(object(), "validator")


def test_without_monai_engines_loaded_everything_is_a_trainer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "monai.engines.evaluator", raising=False)
    assert engine_role(FakeSupervisedEvaluator()) == "trainer"
