"""Shared fixtures: the native stack, started once per test session, and polling."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "native"))

from stack import NativeStack, Ports, binary_paths  # noqa: E402

# Test stacks listen 10000 ports above the defaults, so a user's `make up` can keep
# running; LLMTEL_TEST_PORT_OFFSET moves them again for parallel test sessions.
TEST_PORT_OFFSET = int(os.environ.get("LLMTEL_TEST_PORT_OFFSET", "10000"))

T = TypeVar("T")


def poll_until(fn: Callable[[], T], what: str, timeout: float = 60, interval: float = 1) -> T:
    """Call ``fn`` until it returns without AssertionError; fail saying what was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except AssertionError as error:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"waited {timeout:.0f} s for {what}; last check said: {error}"
                ) from error
        time.sleep(interval)


@pytest.fixture(scope="session")
def bins() -> dict[str, Path]:
    """Paths of the native binaries, built first if the cache lacks them."""
    return binary_paths(build=True)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, bins: dict[str, Path]) -> Iterator[NativeStack]:
    """The real native stack on the repo's configs, on test ports, for the whole session."""
    native = NativeStack(Ports().shifted(TEST_PORT_OFFSET), tmp_path_factory.mktemp("stack"))
    native.up(build=False)
    yield native
    native.down(quiet=True)
