"""Registration hooks."""
