"""The layer-wise probe configs (configs/benchmarks/): AIM's attentive probe over the average of the last blocks,
and the linear probe on an intermediate block, each its base recipe with only the read-out changed."""
import os.path as osp

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmpretrain.models import VisionTransformer
from mmpretrain.registry import MODELS

import saim_mm  # noqa: F401
from tests.test_configs.test_imagenet_benchmark_recipes import DEMO_LINEAR, LINEAR, load
from tests.test_configs.test_probe_protocol_recipes import ATTENTIVE, DEMO_ATTENTIVE
from tests.test_tools.test_imagenet_transfer_demo import transfer_cfg

LAST6, BLOCK8 = 'benchmarks/imagenet/vitb_attentive_last6_90e.py', 'benchmarks/imagenet/vitb_linear_block8_90e.py'
DEMO_LAST2, DEMO_BLOCK2 = 'benchmarks/demo/attentive_last2_cpu.py', 'benchmarks/demo/linear_block2_cpu.py'
CHECKED_CONFIGS = {
    LAST6: 'ImageNet attentive probe on the average of the raw outputs of the last 6 blocks (AIM); only the '
           'read-out differs from vitb_attentive_90e.py; builds at full size',
    BLOCK8: 'ImageNet linear probe on the cls token of block index 8; only out_indices differs from '
            'vitb_linear_90e.py; builds at full size',
    DEMO_LAST2: 'CPU demo: the attentive demo on the average of the last 2 blocks; trains the head only',
    DEMO_BLOCK2: 'CPU demo: the linear demo on block index 2; only out_indices and work_dir differ',
}
ABSENT = object()


def flat(d: dict, prefix: str = '') -> dict:
    out = {}
    for key, value in d.items():
        if isinstance(value, dict) and value:
            out.update(flat(value, f'{prefix}{key}.'))
        else:
            out[prefix + key] = value
    return out


def differing_keys(cfg, base) -> set:
    a, b = flat(cfg.to_dict()), flat(base.to_dict())
    return {k for k in a.keys() | b.keys() if a.get(k, ABSENT) != b.get(k, ABSENT)}


AVERAGE_KEYS = {'num_blocks', 'model.backbone.out_type', 'model.backbone.out_indices', 'model.backbone.final_norm',
                'model.neck', 'model.neck.type', 'model.neck.num_inputs', 'model.head.num_extra_tokens'}


@pytest.mark.parametrize('rel,base,depth,extra', [(LAST6, ATTENTIVE, 12, set()),
                                                  (DEMO_LAST2, DEMO_ATTENTIVE, 4, {'work_dir'})])
def test_layer_average_probe_changes_only_the_read_out(rel, base, depth, extra):
    cfg = load(rel)
    assert differing_keys(cfg, load(base)) == AVERAGE_KEYS | extra
    backbone, blocks = cfg.model.backbone, depth // 2  # the last half: 6 of 12, 2 of 4
    assert backbone.out_indices == list(range(depth - blocks, depth)) and backbone.out_type == 'raw'
    assert backbone.final_norm is False  # the blocks' outputs as they leave them, as AIM averages them
    assert backbone.frozen_stages == depth
    assert cfg.model.neck == dict(type='BlockAverageNeck', num_inputs=blocks)
    assert cfg.model.head.type == 'AttentiveProbeHead' and cfg.model.head.num_extra_tokens == 1


@pytest.mark.parametrize('rel,base,index,extra', [(BLOCK8, LINEAR, 8, set()),
                                                  (DEMO_BLOCK2, DEMO_LINEAR, 2, {'work_dir'})])
def test_intermediate_linear_probe_changes_only_the_block(rel, base, index, extra):
    cfg = load(rel)
    assert differing_keys(cfg, load(base)) == {'model.backbone.out_indices'} | extra
    assert cfg.model.backbone.out_indices == [index] and cfg.model.backbone.out_type == 'cls_token'
    depth = 12 if cfg.model.backbone.arch == 'b' else cfg.model.backbone.arch.num_layers
    assert 4 * (index + 1) == 3 * depth  # three quarters of the depth in both


def test_full_size_models_build_on_the_meta_device():
    vit_b = 85_798_656  # ViT-B/16 at 224 with the final norm
    with torch.device('meta'):
        last6 = MODELS.build(load(LAST6).model)
        block8 = MODELS.build(load(BLOCK8).model)
        images = torch.empty(2, 3, 224, 224)
        tokens, cls = last6.extract_feat(images), block8.extract_feat(images)
    assert sum(p.numel() for p in last6.backbone.parameters()) == vit_b - 2 * 768  # no final norm
    assert type(last6.neck).__name__ == 'BlockAverageNeck' and not list(last6.neck.parameters())
    assert last6.head.num_extra_tokens == 1 and last6.head.in_channels == 768
    assert len(tokens) == 1 and tokens[0].shape == (2, 1 + 196, 768)
    assert sum(p.numel() for p in block8.backbone.parameters()) == vit_b
    assert block8.backbone.out_indices == [8] and len(cls) == 1 and cls[0].shape == (2, 768)
    trainable = [n for n, p in last6.named_parameters() if p.requires_grad]
    assert trainable == ['head.query', 'head.kv.weight', 'head.kv.bias', 'head.fc.weight', 'head.fc.bias']


class HeadSnapshot(Hook):
    """Keeps the head's parameters as training starts (after the runner initialised and loaded the weights)."""

    def before_train(self, runner) -> None:
        self.head = {n: p.detach().clone() for n, p in runner.model.head.named_parameters()}


def test_demo_layer_average_probe_trains_its_head_on_the_loaded_encoder(demo_data, tmp_path):
    demo = load(DEMO_LAST2).model.backbone
    torch.manual_seed(0)
    encoder = VisionTransformer(arch=demo.arch, img_size=demo.img_size, patch_size=demo.patch_size,
                                final_norm=True)  # a pre-trained encoder file, final norm included
    checkpoint = str(tmp_path / 'backbone.pth')
    torch.save({'state_dict': {'backbone.' + k: v for k, v in encoder.state_dict().items()}}, checkpoint)
    cfg = transfer_cfg(DEMO_LAST2, demo_data, str(tmp_path / 'probe'), checkpoint, epochs=1)
    runner = Runner.from_cfg(cfg)
    snapshot = HeadSnapshot()
    runner.register_hook(snapshot, 'LOWEST')
    runner.train()  # 32 images, batch 8: 4 iterations
    model = runner.model
    assert runner.iter == 4 and osp.exists(osp.join(str(tmp_path / 'probe'), 'epoch_1.pth'))
    assert not hasattr(model.backbone, 'ln1')  # the file's final norm is left out
    for k, v in model.backbone.state_dict().items():  # loaded, then frozen
        assert torch.equal(v, encoder.state_dict()[k]), k
    for n, p in model.head.named_parameters():
        assert not torch.equal(p, snapshot.head[n]), n
    top1 = runner.val()['accuracy/top1']
    assert 0.0 <= top1 <= 100.0
