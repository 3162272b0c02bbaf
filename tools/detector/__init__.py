"""The single-shot face detector: config, data, PyTorch model, training, export, held-out
evaluation, and the LBP cascade's calibration."""
