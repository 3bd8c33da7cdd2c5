"""Command-line tools: rsc-train, rsc-bench and their shared pieces."""
