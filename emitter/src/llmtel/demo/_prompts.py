"""The demo traffic's prompts: a few realistic tasks, some with a system message."""

from __future__ import annotations

from dataclasses import dataclass

from openai.types.chat import ChatCompletionMessageParam


@dataclass(frozen=True)
class Prompt:
    """One kind of request: a user message, an optional system message and token cap."""

    user: str
    system: str | None = None
    max_completion_tokens: int | None = None

    def messages(self) -> list[ChatCompletionMessageParam]:
        """The chat messages for this prompt."""
        messages: list[ChatCompletionMessageParam] = []
        if self.system is not None:
            messages.append({"role": "system", "content": self.system})
        messages.append({"role": "user", "content": self.user})
        return messages


_SUPPORT = "You are a friendly support agent for Acme Cloud. Answer in at most three sentences."
_CODER = "You are a senior Python reviewer. Be precise and brief."

PROMPTS: tuple[Prompt, ...] = (
    Prompt("How do I reset my password if I no longer have access to my email?", _SUPPORT),
    Prompt("My invoice shows two charges for March. Can you explain why?", _SUPPORT),
    Prompt("Is there a way to export all my projects as a zip file?", _SUPPORT),
    Prompt("Review this function: def add(a, b): return a + b  # should it handle None?", _CODER),
    Prompt("What is the difference between a list and a tuple in Python?", _CODER),
    Prompt("Summarize the plot of Hamlet in two sentences.", max_completion_tokens=80),
    Prompt("Translate 'Where is the train station?' into French, German and Spanish."),
    Prompt("Write a haiku about observability and distributed tracing."),
    Prompt("Give me three name ideas for a coffee shop that is also a bookstore."),
    Prompt(
        "Explain what an OpenTelemetry collector does, for a product manager.",
        max_completion_tokens=120,
    ),
    Prompt("Draft a polite email asking my landlord to fix the heating this week."),
    Prompt("What are the main causes of inflation? Answer with a short bulleted list."),
    Prompt(
        "List five healthy breakfast ideas that take under ten minutes.", max_completion_tokens=24
    ),
)
