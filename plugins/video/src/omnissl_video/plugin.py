"""Registration hooks of the video plugin (``omnissl-video``)."""
