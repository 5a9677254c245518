"""Delivery providers: one adapter per provider behind the `Provider` interface."""
