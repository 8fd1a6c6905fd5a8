"""Video objectives, one file per paper: VideoMAE, SIGMA, CrossVideoMAE (and the shared MAE decoder)."""
