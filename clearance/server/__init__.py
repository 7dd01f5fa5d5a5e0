"""``clearance serve``: the REST API (FastAPI) over the same use-cases as the CLI."""
