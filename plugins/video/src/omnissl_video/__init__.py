"""omnissl-video: the video domain plugin of omnissl."""
