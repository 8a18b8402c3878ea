"""The ``llmtel`` command: ``llmtel demo serve|traffic``, ``llmtel evals run|once|...``.

A command group is a module with ``register(subparsers)``: it adds its parser and sets
``handler`` (``argparse.Namespace -> int`` exit code) with ``set_defaults``. Add yours to
``_GROUPS``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from llmtel.demo import _cli as demo_cli
from llmtel.evals import _cli as evals_cli

_GROUPS: tuple[Callable[[demo_cli.Subparsers], None], ...] = (
    demo_cli.register,
    evals_cli.register,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``llmtel`` argument parser with every command group registered.

    Example:
        >>> build_parser().parse_args(["demo", "serve", "--port", "0"]).port
        0
    """
    parser = argparse.ArgumentParser(
        prog="llmtel", description="Observability for LLM applications."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in _GROUPS:
        register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``llmtel`` command line; return its exit code.

    Example:
        >>> main(["demo", "traffic", "--provider", "openai"])  # without OPENAI_API_KEY
        2
    """
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
