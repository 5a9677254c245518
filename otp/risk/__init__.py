"""Fraud and abuse controls: the risk policy, sliding-window limits, conversion monitoring."""
