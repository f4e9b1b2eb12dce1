"""ArtStore: the CLI entry point, shared settings and logging."""
