"""Workflow definitions (deterministic; no I/O)."""
