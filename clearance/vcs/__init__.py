"""Version control adapters: reading commits, files and diffs from a real git repository."""
