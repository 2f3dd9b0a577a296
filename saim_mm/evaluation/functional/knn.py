"""Weighted k-nearest-neighbour classification of features (the k-NN protocol of DINO)."""
import torch
import torch.nn.functional as F
from torch import Tensor


def knn_classify(train_feats: Tensor, train_labels: Tensor, query_feats: Tensor, num_classes: int, k: int = 20,
                 temperature: float = 0.07, chunk_size: int = 1024) -> Tensor:
    """Class scores of ``query_feats`` from a weighted vote of their ``k`` nearest training features.

    Both feature sets are L2-normalised, so the similarity is the cosine. Each query takes its ``k`` most
    similar training features; neighbour ``j`` votes for its label with the weight ``exp(s_j / temperature)``
    and the score of a class is the sum of the weights of its neighbours. ``scores.argmax(1)`` is the
    prediction. The scores are computed in float32 (``exp(1 / 0.07)`` overflows float16), on the device of
    ``train_feats``, ``chunk_size`` queries at a time (the similarity matrix of a chunk is
    ``chunk_size x N``; lower it for large banks).

    Args:
        train_feats (Tensor): (N, C) memory bank.
        train_labels (Tensor): (N, ) integer labels in ``[0, num_classes)``.
        query_feats (Tensor): (M, C) features to classify.
        num_classes (int): Number of classes.
        k (int): Neighbours per query; at most N (a larger k is an error, not clamped). Defaults to 20.
        temperature (float): Temperature T of the vote weights. Defaults to 0.07.
        chunk_size (int): Queries per chunk. Defaults to 1024.

    Returns:
        Tensor: (M, num_classes) float32 class scores, on the device of ``train_feats``.

    Raises:
        ValueError: shapes that do not fit, labels out of range, k outside ``[1, N]``, temperature <= 0 or
            chunk_size < 1.
    """
    if train_feats.dim() != 2 or query_feats.dim() != 2 or train_feats.size(1) != query_feats.size(1):
        raise ValueError(f'train_feats and query_feats must be (N, C) and (M, C) with the same C, got shapes '
                         f'{tuple(train_feats.shape)} and {tuple(query_feats.shape)}.')
    num_train = train_feats.size(0)
    if train_labels.shape != (num_train, ) or train_labels.is_floating_point():
        raise ValueError(f'train_labels must be an integer tensor of shape ({num_train}, ), got '
                         f'{train_labels.dtype} of shape {tuple(train_labels.shape)}.')
    if num_train and (int(train_labels.min()) < 0 or int(train_labels.max()) >= num_classes):
        raise ValueError(f'train_labels must lie in [0, {num_classes}) (num_classes={num_classes}), got values '
                         f'in [{int(train_labels.min())}, {int(train_labels.max())}].')
    if not 1 <= k <= num_train:
        raise ValueError(f'k={k} must be between 1 and the number of training features N={num_train}.')
    if temperature <= 0:
        raise ValueError(f'temperature must be > 0, got {temperature}.')
    if chunk_size < 1:
        raise ValueError(f'chunk_size must be >= 1, got {chunk_size}.')

    device = train_feats.device
    bank = F.normalize(train_feats.float(), dim=1)
    labels = train_labels.to(device=device, dtype=torch.long)
    scores = []
    for chunk in query_feats.split(chunk_size):
        queries = F.normalize(chunk.to(device).float(), dim=1)
        sims, idx = (queries @ bank.t()).topk(k, dim=1)  # (m, k) each
        votes = torch.zeros(queries.size(0), num_classes, device=device)
        scores.append(votes.scatter_add_(1, labels[idx], (sims / temperature).exp()))
    return torch.cat(scores) if scores else torch.zeros(0, num_classes, device=device)
