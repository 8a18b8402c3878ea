"""The public surface: small, sorted, typed, documented, with examples that run."""

from __future__ import annotations

import doctest
import importlib
import inspect
from pathlib import Path

import pytest

import llmtel
import llmtel.testing

PUBLIC_MODULES = [llmtel, llmtel.testing]


def test_all_is_sorted_and_complete() -> None:
    """Verify that `__all__` is sorted and lists exactly the expected names."""
    assert llmtel.__all__ == sorted(llmtel.__all__)
    assert set(llmtel.__all__) == {
        "CaptureContent",
        "FeedbackKind",
        "OpenAIInstrumentor",
        "Outcome",
        "StreamEnd",
        "__version__",
        "call_id",
        "context",
        "feedback",
        "force_flush",
        "init",
        "shutdown",
    }
    assert llmtel.testing.__all__ == sorted(llmtel.testing.__all__)


def test_package_is_typed() -> None:
    """Verify that the package ships a `py.typed` marker."""
    assert (Path(llmtel.__file__).parent / "py.typed").is_file()


PUBLIC_CALLABLES = [
    obj
    for obj in [getattr(m, name) for m in PUBLIC_MODULES for name in m.__all__]
    + [getattr(llmtel.testing.Capture, n) for n in vars(llmtel.testing.Capture)]
    if (inspect.isfunction(obj) or inspect.isclass(obj)) and not obj.__name__.startswith("_")
]


@pytest.mark.parametrize("obj", PUBLIC_CALLABLES, ids=lambda obj: obj.__qualname__)
def test_public_callables_have_a_docstring_with_an_example(obj: object) -> None:
    """Verify that every public function and class documents itself with one example."""
    assert "Example" in (inspect.getdoc(obj) or "")


@pytest.mark.parametrize(
    "module",
    [
        "llmtel",
        "llmtel._context",
        "llmtel._feedback",
        "llmtel._instrumentor",
        "llmtel._setup",
        "llmtel.testing",
    ],
)
def test_docstring_examples_run(module: str) -> None:
    """Verify that the examples in the public docstrings pass as doctests."""
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
