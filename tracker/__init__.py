"""Face tracking and makeup rendering on top of nnlite."""
