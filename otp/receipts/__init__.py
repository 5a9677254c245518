"""Inbound: the delivery receipts providers post back, their signatures and parsing (one module per provider)."""
