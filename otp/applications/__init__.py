"""Applications: per-application request defaults, allowed channels, id and key formats."""
