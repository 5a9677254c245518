"""Activities: everything with side effects (code issue, delivery through providers)."""
