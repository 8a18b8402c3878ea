"""llmtel.evals' public surface: sorted, documented with examples that run."""

from __future__ import annotations

import doctest
import importlib
import inspect

import pytest

import llmtel.evals


def test_all_is_sorted_and_complete() -> None:
    """Verify that `llmtel.evals.__all__` is sorted and lists exactly the expected names."""
    assert llmtel.evals.__all__ == sorted(llmtel.evals.__all__)
    assert set(llmtel.evals.__all__) == {
        "Agreement",
        "ConfigError",
        "EvalConfig",
        "EvalTelemetry",
        "Judge",
        "JudgeFatal",
        "JudgeSettings",
        "JudgeUnavailable",
        "Rubric",
        "Store",
        "Subject",
        "Summary",
        "Verdict",
        "Worker",
        "agreement",
        "cohen_kappa",
        "default_config_text",
        "export_sample",
        "load_config",
        "parse_config",
        "weighted_kappa",
    }


PUBLIC = [
    obj
    for obj in (getattr(llmtel.evals, name) for name in llmtel.evals.__all__)
    if inspect.isfunction(obj) or inspect.isclass(obj)
]


@pytest.mark.parametrize("obj", PUBLIC, ids=lambda obj: obj.__qualname__)
def test_public_callables_have_a_docstring_with_an_example(obj: object) -> None:
    """Verify that every public function and class of llmtel.evals shows one example."""
    assert "Example" in (inspect.getdoc(obj) or "")


@pytest.mark.parametrize(
    "module",
    [
        "llmtel.evals",
        "llmtel.evals._calibration",
        "llmtel.evals._cli",
        "llmtel.evals._config",
        "llmtel.evals._judge",
        "llmtel.evals._kappa",
        "llmtel.evals._records",
        "llmtel.evals._queue",
        "llmtel.evals._telemetry",
        "llmtel.evals._worker",
        "llmtel.demo.server",
    ],
)
def test_docstring_examples_run(module: str) -> None:
    """Verify that the examples in llmtel.evals' docstrings pass as doctests."""
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
