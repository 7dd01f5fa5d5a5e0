"""``clearance demo``: a sample clinical repository and the story of governing its releases."""
