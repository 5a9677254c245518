"""Outbound webhooks (Standard Webhooks): delivery models and signing."""
