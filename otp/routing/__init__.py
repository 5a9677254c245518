"""Routing: which providers serve which channel, in failover order."""
