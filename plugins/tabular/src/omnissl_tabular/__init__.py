"""omnissl plugin package."""
