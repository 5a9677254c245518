"""The HTTP facade: a thin FastAPI layer over VerificationWorkflow (see `api.main.create_app`)."""
