from .knn_test_loop import KNNTestLoop, image_features

__all__ = ['KNNTestLoop', 'image_features']
