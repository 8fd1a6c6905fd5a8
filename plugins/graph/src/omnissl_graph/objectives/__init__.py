"""Graph self-supervised objectives, one per file, named after the paper."""
