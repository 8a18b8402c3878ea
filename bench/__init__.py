"""llmtel's benchmarks: `make bench` (or `python -m bench.run`). Not part of `make test`."""
