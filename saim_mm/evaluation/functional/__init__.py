from .knn import knn_classify

__all__ = ['knn_classify']
