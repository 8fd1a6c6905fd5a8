"""Registration hooks of the medical plugin (``omnissl-medical``)."""
