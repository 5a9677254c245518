"""Entry points: the `otp` command (`python -m cli` or the `otp` console script). Nothing imports this."""
