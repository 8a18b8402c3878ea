"""Emitter overhead: CPU per call against uninstrumented calls, and memory with the collector down.

Imports nothing: ``worker`` runs in comparator virtualenvs that lack llmtel.
"""
