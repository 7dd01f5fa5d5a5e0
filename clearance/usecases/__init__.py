"""Use-cases: what a person can do with Clearance, as library calls the CLI and API share."""
