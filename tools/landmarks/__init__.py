"""The landmark model: PyTorch definition, data, training, export to nnlite weights, evaluation
and the experiments behind the weight cards (imports torch)."""
