"""Collector throughput: telemetrygen drives LLM-shaped spans and logs into the real collector."""
