"""storage_workers."""
