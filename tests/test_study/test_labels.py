"""saim_mm.study.labels: stratified, reproducible few-label draws, the protocols trained on them, and the
summary over seeds x draws."""
import statistics

import pytest
import torch

from saim_mm.study.labels import (LabelBudget, check_budgets, draw_subset, few_label_protocols, label_budgets,
                                  run_few_label)
from saim_mm.study.protocols import PROTOCOLS, FeatureSet, probe_config, run_protocols
from saim_mm.study.report import summarize, table

LABELS = torch.tensor([0] * 7 + [1] * 5 + [2] * 9)[torch.randperm(21, generator=torch.Generator().manual_seed(0))]


def feature_set(labels: torch.Tensor, seed: int = 0) -> FeatureSet:
    g = torch.Generator().manual_seed(seed)
    cls = torch.randn(len(labels), 8, generator=g)
    patches = torch.randn(len(labels), 3, 8, generator=g)
    return FeatureSet(cls, patches.mean(1), patches, labels)


@pytest.mark.parametrize('k', [1, 3, 5])
def test_a_draw_has_exactly_k_images_of_every_class(k):
    for seed, draw in ((0, 0), (2, 1)):
        index = draw_subset(LABELS, LabelBudget('per_class', k), seed, draw)
        assert torch.equal(torch.bincount(LABELS[index]), torch.tensor([k, k, k]))
        assert len(set(index.tolist())) == 3 * k and torch.equal(index, index.sort().values)


def test_a_fraction_rounds_each_class_half_up_with_at_least_one():
    sizes = {0.1: [1, 1, 1], 0.3: [2, 2, 3], 0.5: [4, 3, 5], 1.0: [7, 5, 9]}  # of classes of 7, 5, 9 images
    for fraction, expected in sizes.items():
        index = draw_subset(LABELS, LabelBudget('fraction', fraction), 0, 0)
        assert torch.bincount(LABELS[index]).tolist() == expected, fraction


def test_draws_are_reproducible_from_seed_and_draw_and_differ_otherwise():
    budget = LabelBudget('per_class', 2)
    draws = {(s, d): draw_subset(LABELS, budget, s, d).tolist() for s in (0, 1) for d in (0, 1, 2)}
    assert draws[0, 1] == draw_subset(LABELS, budget, 0, 1).tolist()
    assert len({tuple(v) for v in draws.values()}) == len(draws)  # 6 pairs, 6 different subsets
    assert draws[1, 0] != draws[0, 1]  # not seed + draw


def test_the_budgets_of_one_draw_are_nested():
    small = set(draw_subset(LABELS, LabelBudget('per_class', 1), 4, 2).tolist())
    large = set(draw_subset(LABELS, LabelBudget('per_class', 4), 4, 2).tolist())
    assert small < large


def test_knn_with_one_label_per_class_is_the_nearest_labelled_image():
    train, val = feature_set(LABELS, 0), feature_set(torch.arange(12) % 3, 1)
    configs = {'knn': probe_config('knn', 3, 8, 2, 3, dict(k=20, temperature=0.07))}
    knn = [p for p in PROTOCOLS if p.probe == 'knn']
    out = run_few_label(train, [LabelBudget('per_class', 1)], 2, seed=0,
                        run=lambda subset: run_protocols(subset, val, 3, configs, 0, knn))
    assert out['subset_sizes'] == {'1pc': [3, 3]}
    for draw in range(2):
        index = draw_subset(train.labels, LabelBudget('per_class', 1), 0, draw)
        for p in knn:
            bank = torch.nn.functional.normalize(getattr(train, p.feature)[index], dim=1)
            query = torch.nn.functional.normalize(getattr(val, p.feature), dim=1)
            nearest = train.labels[index][(query @ bank.T).argmax(1)]  # one sample a class: its class wins
            by_hand = 100.0 * float((nearest == val.labels).float().mean())
            assert out[f'{p.key}@1pc'][draw] == pytest.approx(by_hand), (p.key, draw)


def test_probes_train_on_the_subset_and_evaluate_on_all_held_out_images():
    train, val = feature_set(LABELS, 0), feature_set(torch.arange(10) % 3, 1)
    seen = []

    def run(subset):
        seen.append(subset)
        return {'linear_cls': float(len(subset.labels)), 'knn_cls': 0.0}

    out = run_few_label(train, label_budgets([2], [0.5]), 3, 7, run)
    assert len(seen) == 6 and [len(s.labels) for s in seen] == [6, 6, 6, 12, 12, 12]
    assert out['linear_cls@2pc'] == [6.0] * 3 and out['linear_cls@50pct'] == [12.0] * 3
    index = draw_subset(LABELS, LabelBudget('per_class', 2), 7, 1)
    assert torch.equal(seen[1].patches, train.patches[index]) and torch.equal(seen[1].labels, LABELS[index])
    # a linear probe on 2 images a class: its schedule is stretched to the subset's iterations
    cfg = probe_config('linear', 3, 8, 2, len(seen[0].labels), dict(epochs=5, batch=4))
    assert max(s['end'] for s in cfg.param_scheduler) == 5 * 2
    assert len(run_protocols(seen[0], val, 3, dict(linear=cfg), 0, PROTOCOLS[:1])) == 1


def test_columns_summarise_over_seeds_times_draws():
    budgets = label_budgets([1], [0.1])
    columns = few_label_protocols(budgets)
    assert [c.key for c in columns[:2]] == ['linear_cls@1pc', 'linear_mean@1pc']
    assert columns[5].title == 'linear (cls), 10 %' and len(columns) == 2 * len(PROTOCOLS)
    seeds = [dict(seed=s, **{p.key: 50.0 + s for p in PROTOCOLS}, **{c.key: [10.0 * s, 10.0 * s + 2, 1.0]
                                                                    for c in columns}) for s in (0, 1)]
    row = summarize(dict(name='r', pretrained=False, seeds=seeds), PROTOCOLS + tuple(columns))
    pooled = [0.0, 2.0, 1.0, 10.0, 12.0, 1.0]
    assert row['summary']['knn_cls@10pct'] == dict(mean=statistics.mean(pooled), std=statistics.stdev(pooled))
    assert row['summary']['linear_cls']['mean'] == 50.5
    printed = table([row], PROTOCOLS + tuple(columns)).splitlines()
    assert printed[0].endswith(' | k-NN (mean-pool), 10 %')
    assert printed[2].split(' | ')[-1] == f'{statistics.mean(pooled):.1f} ± {statistics.stdev(pooled):.1f}'


@pytest.mark.parametrize('per_class, fractions, message', [
    ([0], [], r'--labels-per-class must be integers >= 1, got 0\.'),
    ([], [0.0], r'--label-fraction must be in \(0, 1\], got 0\.0\.'),
    ([], [1.5], r'--label-fraction must be in \(0, 1\], got 1\.5\.'),
    ([2, 2], [], r'--labels-per-class repeats a value: \[2, 2\]\.'),
])
def test_bad_budgets_are_named(per_class, fractions, message):
    with pytest.raises(ValueError, match=message):
        label_budgets(per_class, fractions)


def test_k_larger_than_the_smallest_class_is_refused_with_its_name():
    check_budgets(label_budgets([5], [1.0]), LABELS, ['ants', 'bees', 'wasps'])
    with pytest.raises(ValueError, match=r"--labels-per-class 6 is larger than the smallest class of the "
                                         r"training images: 'bees' has 5; use at most 5\."):
        check_budgets(label_budgets([1, 6]), LABELS, ['ants', 'bees', 'wasps'])
    with pytest.raises(ValueError, match=r'seed and draw must be >= 0, got seed=-1, draw=0'):
        draw_subset(LABELS, LabelBudget('per_class', 1), -1, 0)
