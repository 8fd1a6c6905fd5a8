"""omnissl-medical: the medical domain plugin of omnissl."""
