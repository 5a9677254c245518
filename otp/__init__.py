"""Shared ground floor: settings, domain types, crypto, codec and the store."""
