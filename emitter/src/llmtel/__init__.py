"""llmtel: observability for LLM applications."""
