"""The 'Deep Learning with PyTorch' lesson as a Lightning application."""
