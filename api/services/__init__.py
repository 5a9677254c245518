"""The API's logic, called by the thin route handlers (and by the CLI)."""
