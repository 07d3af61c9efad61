"""The HTTP service (FastAPI): ``api.main.create_app``; ``tally serve`` runs it."""
