"""Evaluation protocols of frozen encoders: k-NN classification (the loop is saim_mm.engine.KNNTestLoop)."""
from .functional import knn_classify

__all__ = ['knn_classify']
