"""SemanticOrder (SemAIM): a hand-computed order, the similarities against mmpretrain's ViT and written-out
formulas, permutations, noise, gradient isolation, the teacher source and the errors."""
import copy
import math

import pytest
import torch
from mmpretrain.registry import MODELS
from torch import nn

import saim_mm  # noqa: F401
from saim_mm.models.orders import SemanticOrder, named_orders
from saim_mm.models.utils import check_order
from tests.conftest import tiny_saim_cfg

IMG = (12, 16)  # a 3 x 4 grid of 4 x 4 patches:  0 1 2 3 / 4 5 6 7 / 8 9 10 11
GRID = (3, 4)


def semantic(grid=GRID, **kwargs) -> SemanticOrder:
    return MODELS.build(dict(type='SemanticOrder', grid=grid, **kwargs))


def distance_order(start: int, grid) -> list:
    """Start first, then by squared grid distance to the start, ties in raster order (plain Python)."""
    w = grid[1]
    r0, c0 = divmod(start, w)
    return sorted(range(grid[0] * w), key=lambda i: (i != start, (i // w - r0)**2 + (i % w - c0)**2, i))


def identity_encoder(cls_token) -> nn.Module:
    """A one-block SAIMViT whose tokens are known: the block is the identity, the position embedding zero,
    no final norm, and the token of a patch is (mean red, mean green, mean blue, 0) of its pixels."""
    enc = MODELS.build(dict(type='SAIMViT', arch=dict(embed_dims=4, num_layers=1, num_heads=2, feedforward_channels=8),
                            img_size=IMG, patch_size=4, final_norm=False)).double()
    with torch.no_grad():
        for p in enc.parameters():
            p.zero_()
        for c in range(3):
            enc.patch_embed.projection.weight[c, c] = 1 / 16
        enc.cls_token[0, 0] = torch.tensor(cls_token, dtype=torch.float64)
    return enc


def stub_model(encoder: nn.Module) -> nn.Module:
    model = nn.Module()
    model.backbone = encoder
    return model


def patch_images(colours) -> torch.Tensor:
    """(1, 3, 12, 16) images, patch i filled with colours[i] (RGB)."""
    cells = torch.tensor(colours, dtype=torch.float64).T.reshape(1, 3, *GRID)
    return cells.repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)


# red values of the 12 patches (green 1, blue 0): patch 6 is the reddest, the most like the cls token (1, 0, 0, 0)
REDS = [0.3, 0.9, 0.1, 0.5, 0.7, 0.2, 5.0, 0.8, 0.4, 0.6, 1.0, 0.0]


def test_the_name_and_the_contract_flags():
    assert named_orders()['semantic'] is SemanticOrder
    assert SemanticOrder.needs_images and not SemanticOrder.fixed
    assert semantic().segment_size == 1 and not semantic().state_dict()


def test_hand_computed_order_starts_at_the_patch_most_like_the_cls_token_and_goes_out_by_distance():
    model = stub_model(identity_encoder([1., 0., 0., 0.]))
    x = patch_images([(r, 1., 0.) for r in REDS])
    # cos(cls, patch i) = r_i / sqrt(r_i^2 + 1): the largest at patch 6 = (row 1, col 2); then the squared
    # distances 1: patches 2, 5, 7, 10; 2: 1, 3, 9, 11; 4: 4; 5: 0, 8 (ties in raster order)
    z = semantic(noise=0)(1, images=x, model=model)
    assert z.tolist() == [[6, 2, 5, 7, 10, 1, 3, 9, 11, 4, 0, 8]]
    assert z.dtype == torch.long and not z.requires_grad
    expected = torch.tensor([r / math.hypot(r, 1) for r in REDS], dtype=torch.float64)
    torch.testing.assert_close(semantic().scores(model.backbone, x)[0], expected, rtol=1e-12, atol=1e-12)
    # the similarity ranking (the paper's ablation): by decreasing r_i
    assert semantic(noise=0, ranking='similarity')(1, images=x, model=model).tolist() == [
        [6, 10, 1, 7, 4, 9, 3, 8, 0, 5, 2, 11]]


def test_mean_patch_similarity_starts_at_the_patch_most_like_the_mean_patch_token():
    model = stub_model(identity_encoder([1., 0., 0., 0.]))
    reds = [0.1 * i for i in range(12)]
    reds[9], reds[4] = 2.0, 0.9
    mean = sum(reds) / 12
    cos = [(mean * r + 1) / (math.hypot(mean, 1) * math.hypot(r, 1)) for r in reds]
    start = max(range(12), key=cos.__getitem__)
    z = semantic(noise=0, similarity='mean_patch')(1, images=patch_images([(r, 1., 0.) for r in reds]),
                                                    model=model)
    assert z[0].tolist() == distance_order(start, GRID)
    assert start != 6  # differs from the cls start of the hand-computed test


def tiny_vit(**kwargs) -> nn.Module:
    torch.manual_seed(0)
    vit = MODELS.build(dict(type='SAIMViT', arch=dict(embed_dims=16, num_layers=2, num_heads=2,
                                                      feedforward_channels=32), img_size=IMG, patch_size=4, **kwargs))
    vit.init_weights()
    with torch.no_grad():  # non-trivial norms and biases, the final norm included
        for p in vit.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return vit.double()


@pytest.mark.parametrize('similarity', ['cls', 'mean_patch'])
def test_scores_are_cosines_of_mmpretrains_raw_tokens_after_the_final_norm(similarity):
    vit = tiny_vit(out_type='cls_token', drop_path_rate=0.5)
    raw = tiny_vit(out_type='raw')
    raw.load_state_dict(vit.state_dict())
    raw.eval()
    x = torch.randn(2, 3, *IMG, dtype=torch.float64)
    tokens = raw(x)[-1]  # mmpretrain's plain forward, (B, 1+N, C) after the final norm
    anchor = tokens[:, 0] if similarity == 'cls' else tokens[:, 1:].mean(1)
    expected = torch.stack([torch.stack([a @ t / (a.norm() * t.norm()) for t in p]) for a, p in
                            zip(anchor, tokens[:, 1:])])
    vit.train()  # the pass runs in eval mode (no drop path) whatever the encoder's mode
    scores = semantic(similarity=similarity).scores(vit, x)
    torch.testing.assert_close(scores, expected, rtol=1e-12, atol=1e-12)


def test_attention_similarity_is_the_last_blocks_cls_attention_averaged_over_heads():
    vit = tiny_vit()
    vit.eval()
    x = torch.randn(2, 3, *IMG, dtype=torch.float64)
    inputs = []
    handle = vit.layers[-1].register_forward_pre_hook(lambda m, args: inputs.append(args[0]))
    with torch.no_grad():
        vit(x)
    handle.remove()
    block = vit.layers[-1]
    q, k, _ = block.attn.qkv(block.ln1(inputs[0])).reshape(2, 13, 3, 2, 8).permute(2, 0, 3, 1, 4)
    weights = torch.softmax(q[:, :, :1] @ k.transpose(-2, -1) / math.sqrt(8), dim=-1)  # (B, heads, 1, 1+N)
    expected = weights[:, :, 0, 1:].mean(1)
    scores = semantic(similarity='attention').scores(vit, x)
    torch.testing.assert_close(scores, expected, rtol=1e-10, atol=1e-12)
    assert not block.attn.keep_weights and block.attn.weights is None


def test_every_row_is_a_permutation_starting_at_its_most_similar_patch():
    torch.manual_seed(0)
    for grid, noise in (((3, 4), 1e-3), ((5, 5), 0.), ((4, 6), 2.5), ((1, 1), 1e-3)):
        for ranking in ('distance', 'similarity'):
            scores = torch.randn(6, grid[0] * grid[1])
            z = semantic(grid, noise=noise, ranking=ranking).order_from_scores(scores)
            check_order(z, 6, grid[0] * grid[1])
            assert torch.equal(z[:, 0], scores.argmax(1))


def test_noise_zero_is_deterministic_and_draws_no_random_numbers():
    model = stub_model(tiny_vit())
    x = torch.randn(3, 3, *IMG, dtype=torch.float64)
    order = semantic(noise=0)
    state = torch.get_rng_state()
    a = order(3, images=x, model=model)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(123)
    assert torch.equal(order(3, images=x, model=model), a)
    assert torch.equal(a, order.order_from_scores(order.scores(model.backbone, x)))


def grid_distances(z: torch.Tensor, grid) -> torch.Tensor:
    """Euclidean grid distance of every step's patch to the step-0 patch, (B, N) in generation order."""
    w = grid[1]
    rows, cols = z // w, z % w
    return ((rows - rows[:, :1])**2 + (cols - cols[:, :1])**2).double().sqrt()


def test_small_noise_only_shuffles_patches_at_the_same_distance():
    """noise 1e-3 < the smallest gap between distinct distances: the distances along the order are those
    of the noise-free order (non-decreasing), and only ties are drawn at random."""
    grid = (6, 6)
    scores = torch.randn(64, 36, generator=torch.Generator().manual_seed(0))
    exact = semantic(grid, noise=0).order_from_scores(scores)
    torch.manual_seed(0)
    noisy = semantic(grid).order_from_scores(scores)
    assert torch.equal(grid_distances(noisy, grid), grid_distances(exact, grid))
    assert torch.all(grid_distances(noisy, grid).diff(dim=1) >= 0)
    assert not torch.equal(noisy, exact)


@pytest.mark.parametrize('ranking', ['distance', 'similarity'])
def test_noise_moves_a_patch_ahead_only_of_patches_less_than_noise_closer(ranking):
    """With noise s, patch i comes before patch j only if v_i < v_j + s (v: distance, or -similarity)."""
    grid, s = (6, 6), 1.5 if ranking == 'distance' else 0.4
    scores = torch.randn(64, 36, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.manual_seed(1)
    z = semantic(grid, noise=s, ranking=ranking).order_from_scores(scores)
    v = grid_distances(z, grid) if ranking == 'distance' else -scores.gather(1, z)
    later_min = v.flip(1).cummin(dim=1).values.flip(1)  # min of v over steps >= t
    assert torch.all(v[:, 1:-1] < later_min[:, 2:] + s)
    assert torch.any(v[:, 1:].diff(dim=1) < 0)  # the noise does reorder neighbouring values


def build_saim(order=None, seed: int = 5) -> nn.Module:
    cfg = tiny_saim_cfg(depth=4, dec_depth=4, img_size=IMG, order=order or dict(type='SemanticOrder'))
    torch.manual_seed(seed)
    model = MODELS.build(cfg)
    model.init_weights()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.double()
    model.eval()
    return model


def test_gradient_isolation_holds_for_the_data_dependent_order():
    """The prediction at step t has zero gradient w.r.t. the patches at or after t, non-zero w.r.t. every
    earlier one (the order's own pass adds no path from later patches)."""
    model = build_saim()
    x = torch.randn(1, 3, *IMG, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x.requires_grad_(True)
    z = model.sample_order(1, x.device, images=x)
    assert not z.requires_grad and z.grad_fn is None
    pred = model.predict_patches(x, z)
    for t in range(12):
        (grad, ) = torch.autograd.grad(pred[0, t].sum(), x, retain_graph=True)
        per_patch = model.head.patchify(grad.abs()).sum(-1)[0]
        assert torch.all(per_patch[z[0, t:]] == 0), f'step {t} sees later patches'
        assert torch.all(per_patch[z[0, :t]] > 0), f'step {t} misses earlier patches'


def test_the_orders_pass_runs_in_eval_mode_without_a_graph_and_restores_the_modes():
    model = build_saim().float()
    model.train()
    model.backbone.ln1.eval()  # a module the caller keeps in eval mode stays so
    seen = []
    hook = model.backbone.layers[-1].register_forward_hook(
        lambda m, args, out: seen.append((m.training, out.requires_grad, torch.is_grad_enabled())))
    x = torch.randn(2, 3, *IMG)
    z = model.sample_order(2, x.device, images=x)
    hook.remove()
    assert seen == [(False, False, False)]
    assert model.backbone.training and model.backbone.layers[-1].training and not model.backbone.ln1.training
    # the loss that draws its order (running the encoder's pass) gives the same gradients as the loss
    # given that order
    torch.manual_seed(0)
    model.loss(x)['loss'].backward()
    drawn = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    torch.manual_seed(0)
    z = model.sample_order(2, x.device, images=x)
    model.loss(x, order=z)['loss'].backward()
    given = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert 'backbone.layers.0.attn.qkv.weight' in given and given.keys() == drawn.keys()
    assert all(torch.equal(given[n], drawn[n]) for n in given)


def test_full_loss_and_backward_in_training_mode():
    model = build_saim().float()
    model.train()
    x = torch.randn(2, 3, *IMG)
    loss = model.loss(x)['loss']
    loss.backward()
    assert torch.isfinite(loss) and model.training
    assert model.backbone.layers[0].attn.qkv.weight.grad.abs().sum() > 0
    assert model.neck.predictor.fc2.weight.grad.abs().sum() > 0


def test_teacher_source_runs_the_teachers_encoder():
    model = build_saim(dict(type='SemanticOrder', source='teacher', noise=0))
    teacher_encoder = copy.deepcopy(model.backbone)
    with torch.no_grad():
        for p in teacher_encoder.parameters():
            p.add_(0.5 * torch.randn_like(p))
    model.head.teacher = nn.Module()
    model.head.teacher.encoder = teacher_encoder
    teacher_encoder.train()
    x = torch.randn(4, 3, *IMG, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    z = model.sample_order(4, x.device, images=x)
    assert torch.equal(z, semantic(noise=0)(4, images=x, model=stub_model(teacher_encoder)))
    assert not torch.equal(z, semantic(noise=0)(4, images=x, model=model))  # not the student's order
    assert teacher_encoder.training


@pytest.mark.parametrize('kwargs, message', [
    (dict(source='ema'), r"SemanticOrder source must be one of \('encoder', 'teacher'\), got 'ema'"),
    (dict(similarity='gap'), r"SemanticOrder similarity must be one of \('cls', 'mean_patch', 'attention'\), "
     "got 'gap'"),
    (dict(ranking='random'), r"SemanticOrder ranking must be one of \('distance', 'similarity'\), got 'random'"),
    (dict(noise=-0.1), 'SemanticOrder noise must be a finite number >= 0, got -0.1'),
    (dict(noise=float('inf')), 'SemanticOrder noise must be a finite number >= 0, got inf'),
    (dict(noise='0.1'), "SemanticOrder noise must be a finite number >= 0, got '0.1'"),
    (dict(segment_size=4), 'SemanticOrder segment_size=4: a semantic order with segments is not supported'),
])
def test_bad_keys_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        semantic(**kwargs)


def test_a_call_without_fitting_images_or_a_model_is_refused():
    model = stub_model(tiny_vit())
    order = semantic()
    with pytest.raises(ValueError, match=r'computed from the images: call it as order\(batch_size, device, '
                       r'images=\(B, 3, H, W\), model='):
        order(2)
    with pytest.raises(ValueError, match=r'B = batch_size = 3, got \(2, 3, 12, 16\)'):
        order(3, images=torch.randn(2, 3, *IMG, dtype=torch.float64), model=model)
    with pytest.raises(ValueError, match='the images give a 4x4 patch grid, the order is for 3x4'):
        order(2, images=torch.randn(2, 3, 16, 16, dtype=torch.float64), model=model)


def test_teacher_source_without_a_teacher_is_refused():
    model = build_saim(dict(type='SemanticOrder', source='teacher'))
    with pytest.raises(ValueError, match=r"order.source='teacher' needs a teacher with an encoder "
                       r"\(model.head.teacher.encoder.*the head GaussianPixelLoss has none"):
        model.loss(torch.randn(2, 3, *IMG, dtype=torch.float64))
    model.head.teacher = nn.Module()
    model.head.teacher.encoder = nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r"order.source='teacher': model.head.teacher.encoder must be a ViT with a "
                       'cls token'):
        model.sample_order(2, 'cpu', images=torch.randn(2, 3, *IMG, dtype=torch.float64))


def test_attention_similarity_without_saim_attention_is_refused():
    vit = tiny_vit()
    vit.layers[-1].attn = nn.Identity()
    with pytest.raises(TypeError, match="similarity='attention' needs SAIMAttention blocks; the last block of the "
                       'encoder has Identity'):
        semantic(similarity='attention').scores(vit, torch.randn(1, 3, *IMG, dtype=torch.float64))
    assert vit.training  # refused before the pass
