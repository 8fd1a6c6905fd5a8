"""Pure loss functions on embeddings, one per file, named after the paper."""
