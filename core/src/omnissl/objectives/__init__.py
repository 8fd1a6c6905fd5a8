"""Domain-agnostic SSL objectives, one per file, named after the paper."""
