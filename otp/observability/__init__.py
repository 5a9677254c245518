"""Logs, metrics, tracing and the search attributes operators filter by."""
