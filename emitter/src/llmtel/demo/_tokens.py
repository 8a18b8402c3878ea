"""The demo server's token rules: deterministic, documented, and cheap to recompute in tests.

Words are whitespace-separated runs (``str.split()``); one word is one token.

- Chat input: every message costs ``MESSAGE_OVERHEAD_TOKENS`` (3) plus the words of its
  text content (a string, or the ``text`` of each content part). Roles, names and
  non-text parts cost nothing more.
- Responses input: ``instructions`` count as a system message; a string ``input`` as one
  user message; a list ``input`` as one message per item (items without text cost only
  the overhead).
- Embeddings input: the words of each string, or the length of each token array; no
  overhead.
- Output: ``output_tokens_min + prompt_tokens % (output_tokens_max - output_tokens_min + 1)``,
  unless a directive, a seeded draw (``vary``) or the request's token cap decides.
  The generated text has exactly that many words.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

MESSAGE_OVERHEAD_TOKENS = 3
"""Tokens every input message costs on top of its words."""

DEFAULT_OUTPUT_TOKENS_MIN = 10
DEFAULT_OUTPUT_TOKENS_MAX = 60

_LOREM_TEXT = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua ut enim ad minim veniam quis nostrud "
    "exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat"
)
_LOREM = _LOREM_TEXT.split()


def count_words(text: str) -> int:
    """Return the number of whitespace-separated words in ``text``.

    Example:
        >>> count_words("  two\\nwords ")
        2
    """
    return len(text.split())


def _content_words(content: object) -> int:
    if isinstance(content, str):
        return count_words(content)
    if isinstance(content, Sequence):
        total = 0
        for part in content:
            if isinstance(part, Mapping):
                text = part.get("text")
                if isinstance(text, str):
                    total += count_words(text)
        return total
    return 0


def prompt_tokens_for(messages: Iterable[Mapping[str, object]]) -> int:
    """Return the ``prompt_tokens`` the demo server reports for these chat messages.

    Each message costs ``MESSAGE_OVERHEAD_TOKENS`` (3) plus the words of its text content.

    Example:
        >>> prompt_tokens_for([
        ...     {"role": "system", "content": "Be brief."},
        ...     {"role": "user", "content": "Say hello"},
        ... ])
        10
    """
    return sum(MESSAGE_OVERHEAD_TOKENS + _content_words(m.get("content")) for m in messages)


def response_input_tokens_for(input: object, instructions: str | None = None) -> int:
    """Return the ``input_tokens`` the demo server reports for a Responses API request.

    ``instructions`` count as a system message, a string ``input`` as one user message and
    each item of a list ``input`` as one message.

    Example:
        >>> response_input_tokens_for("Say hello", instructions="Be brief.")
        10
    """
    messages: list[Mapping[str, object]] = []
    if instructions:
        messages.append({"role": "system", "content": instructions})
    if isinstance(input, str):
        messages.append({"role": "user", "content": input})
    elif isinstance(input, Sequence):
        messages.extend(item if isinstance(item, Mapping) else {} for item in input)
    return prompt_tokens_for(messages)


def embedding_input_tokens_for(input: object) -> int:
    """Return the ``prompt_tokens`` the demo server reports for an embeddings request.

    Example:
        >>> embedding_input_tokens_for(["one two", "three"])
        3
    """
    if isinstance(input, str):
        return count_words(input)
    if isinstance(input, Sequence):
        if all(isinstance(x, int) for x in input):
            return len(input)
        return sum(embedding_input_tokens_for(x) for x in input)
    return 0


def completion_tokens_for(
    prompt_tokens: int,
    output_tokens_min: int = DEFAULT_OUTPUT_TOKENS_MIN,
    output_tokens_max: int = DEFAULT_OUTPUT_TOKENS_MAX,
) -> int:
    """Return the default number of output tokens for a prompt of ``prompt_tokens``.

    The rule is ``min + prompt_tokens % (max - min + 1)``; pass the server's
    ``DemoConfig.output_tokens_min`` / ``output_tokens_max`` if you changed them.

    Example:
        >>> completion_tokens_for(10)
        20
    """
    span = output_tokens_max - output_tokens_min + 1
    return output_tokens_min + prompt_tokens % span


def lorem_words(count: int) -> list[str]:
    """Return exactly ``count`` filler words (the demo's generated text).

    Example:
        >>> " ".join(lorem_words(3))
        'lorem ipsum dolor'
    """
    return [_LOREM[i % len(_LOREM)] for i in range(count)]
