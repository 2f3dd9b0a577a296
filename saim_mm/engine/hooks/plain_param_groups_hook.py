from mmengine.hooks import Hook
from mmengine.optim import OptimWrapperDict
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class PlainParamGroupsHook(Hook):
    """Make the optimiser's parameter groups plain ``dict`` s before training, so that ``compile=True`` works.

    mmengine's ``DefaultOptimWrapperConstructor`` with a ``paramwise_cfg`` (every saim_mm recipe) hands the
    groups to the optimiser inside its ``ConfigDict`` config, which turns each group into a ``ConfigDict``.
    With ``compile=True`` the Runner compiles ``train_step``, which includes the optimiser step, and
    torch 2.14's dynamo cannot trace a ``ConfigDict`` group: the first iteration fails with
    ``InternalTorchDynamoError: 'UserDefinedDictVariable' object has no attribute 'items'``. The groups'
    contents, and the optimiser state (keyed by parameter), stay as they are.
    """

    def before_train(self, runner) -> None:
        wrapper = runner.optim_wrapper
        for w in (wrapper.values() if isinstance(wrapper, OptimWrapperDict) else [wrapper]):
            groups = w.optimizer.param_groups
            for i, group in enumerate(groups):
                if type(group) is not dict:
                    groups[i] = dict(group)
