"""k-NN classification (DINO's weighted vote) on 2-D points whose answer is worked out by hand."""
import math

import pytest
import torch

from saim_mm.evaluation import knn_classify

# query (1, 0); its cosine similarities to the training points: 1, 0.8, 0.8, -1 (the second point is
# (0.8, 0.6) scaled by 3: the features are L2-normalised first)
TRAIN = torch.tensor([[1.0, 0.0], [2.4, 1.8], [0.8, -0.6], [-1.0, 0.0]])
LABELS = torch.tensor([0, 1, 1, 0])
QUERY = torch.tensor([[1.0, 0.0]])


@pytest.mark.parametrize('temperature', [0.07, 1.0])
def test_scores_are_the_weighted_votes_of_the_k_nearest(temperature):
    scores = knn_classify(TRAIN, LABELS, QUERY, num_classes=3, k=3, temperature=temperature)
    # the 3 nearest: (1, 0) of class 0 (cos 1) and both class-1 points (cos 0.8); (-1, 0) is left out
    expected = torch.tensor([[math.exp(1 / temperature), 2 * math.exp(0.8 / temperature), 0.0]])
    assert scores.dtype == torch.float32 and scores.shape == (1, 3)
    assert torch.allclose(scores, expected, rtol=1e-5)


def test_temperature_decides_between_the_nearest_and_the_majority():
    # T = 0.07: exp(1/T) = e^14.3 beats 2 exp(0.8/T) = 2 e^11.4 -> the single nearest neighbour (class 0)
    # T = 1:    e^1 = 2.72 loses to 2 e^0.8 = 4.45 -> the two slightly farther neighbours (class 1)
    sharp = knn_classify(TRAIN, LABELS, QUERY, num_classes=2, k=3, temperature=0.07)
    flat = knn_classify(TRAIN, LABELS, QUERY, num_classes=2, k=3, temperature=1.0)
    assert sharp.argmax(1).item() == 0 and flat.argmax(1).item() == 1


def test_k_counts_neighbours():
    one = knn_classify(TRAIN, LABELS, QUERY, num_classes=2, k=1, temperature=1.0)
    assert torch.allclose(one, torch.tensor([[math.e, 0.0]]))
    every = knn_classify(TRAIN, LABELS, QUERY, num_classes=2, k=4, temperature=1.0)
    assert torch.allclose(every, torch.tensor([[math.e + math.exp(-1), 2 * math.exp(0.8)]]))


def test_chunks_and_half_precision_give_the_same_scores():
    gen = torch.Generator().manual_seed(0)
    bank, queries = torch.randn(50, 8, generator=gen), torch.randn(7, 8, generator=gen)
    labels = torch.randint(0, 5, (50, ), generator=gen)
    whole = knn_classify(bank, labels, queries, num_classes=5, k=10)
    assert torch.allclose(knn_classify(bank, labels, queries, num_classes=5, k=10, chunk_size=2), whole)
    half = knn_classify(bank.half(), labels, queries.half(), num_classes=5, k=10)  # exp(1/0.07) > fp16 max
    assert half.dtype == torch.float32 and torch.isfinite(half).all()
    assert torch.equal(half.argmax(1), whole.argmax(1))


@pytest.mark.parametrize('kwargs,message', [
    (dict(k=5), 'k=5 must be between 1 and the number of training features N=4'),
    (dict(k=0), 'k=0'),
    (dict(temperature=0.0), 'temperature must be > 0'),
    (dict(chunk_size=0), 'chunk_size must be >= 1'),
    (dict(num_classes=1), r'train_labels must lie in \[0, 1\)'),
    (dict(query_feats=torch.zeros(1, 3)), r'same C, got shapes \(4, 2\) and \(1, 3\)'),
    (dict(train_labels=LABELS[:3]), r'shape \(4, \)'),
    (dict(train_labels=LABELS.float()), 'integer tensor'),
])
def test_bad_input_is_named(kwargs, message):
    args = dict(train_feats=TRAIN, train_labels=LABELS, query_feats=QUERY, num_classes=2, k=3)
    with pytest.raises(ValueError, match=message):
        knn_classify(**{**args, **kwargs})
