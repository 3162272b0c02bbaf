"""Training, export, evaluation, benchmarks and data preparation (may import torch)."""
