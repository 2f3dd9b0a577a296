from typing import Iterator, Tuple

from mmengine.hooks import Hook
from mmengine.model import BaseModule, is_model_wrapper
from mmengine.runner import BaseLoop
from mmpretrain.registry import HOOKS


def pretrained_init_cfgs(model) -> Iterator[Tuple[str, dict]]:
    """``(module name, init_cfg)`` for every ``type='Pretrained'`` init_cfg in ``model``."""
    for name, module in model.named_modules():
        if not isinstance(module, BaseModule):
            continue
        cfgs = module.init_cfg if isinstance(module.init_cfg, list) else [module.init_cfg]
        for cfg in cfgs:
            if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
                yield name, cfg


@HOOKS.register_module()
class PretrainedInitCheckHook(Hook):
    """Before training, stop with a clear message if a ``Pretrained`` init_cfg names no checkpoint.

    The benchmark configs (fine-tuning, linear probing) leave ``model.backbone.init_cfg.checkpoint`` to the
    command line. Without it mmengine's ``PretrainedInit`` fails deep in checkpoint loading with
    ``TypeError: expected string or bytes-like object``, or a probe would silently train on a random
    encoder. The check runs in ``before_run``, which mmengine calls before it initialises the weights; only
    when the runner trains (``tools/test.py`` loads a trained checkpoint and never initialises).
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        # Runner.train() builds its loop before before_run; test()/val() leave it a config dict (or None)
        # and load a trained checkpoint instead of initialising the weights.
        if not isinstance(getattr(runner, '_train_loop', None), BaseLoop):
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        for name, cfg in pretrained_init_cfgs(model):
            if not cfg.get('checkpoint'):
                key = f'model.{name}.init_cfg.checkpoint' if name else 'model.init_cfg.checkpoint'
                raise ValueError(
                    f'{key} is not set: this config fine-tunes or probes a pre-trained encoder and needs its '
                    f'checkpoint, e.g. --cfg-options {key}=work_dirs/saim_backbone.pth (make it with '
                    'tools/model_converters/saim2backbone.py from a SAIM pre-training checkpoint, or '
                    'official2saim.py then saim2backbone.py from the authors\' release).')
