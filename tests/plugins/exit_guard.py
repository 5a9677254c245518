"""Placeholder: replaced by the exit guard plugin."""
