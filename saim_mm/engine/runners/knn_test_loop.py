from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.dist import get_world_size
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import TestLoop
from mmengine.runner.amp import autocast
from mmpretrain.registry import LOOPS
from torch import Tensor
from torch.utils.data import DataLoader

from ...evaluation import knn_classify
from ...utils import all_gather_rows


def image_features(feats: Union[Tensor, Sequence[Tensor]]) -> Tensor:
    """One (B, C) feature per image from what ``extract_feat`` returns (a tuple: its last element is used).

    (B, C) features (mmpretrain ``VisionTransformer(out_type='cls_token')``: the cls token after the final
    norm) are kept; a (B, C, H, W) feature map (``out_type='featmap'``: the patch tokens after the final
    norm) is averaged over H and W.

    Raises:
        ValueError: any other shape.
    """
    feat = feats[-1] if isinstance(feats, (tuple, list)) else feats
    if feat.dim() == 2:
        return feat
    if feat.dim() == 4:
        return feat.mean(dim=(2, 3))
    raise ValueError(f'k-NN needs one feature per image: (B, C), or a (B, C, H, W) map to average; the model '
                     f'gave {tuple(feat.shape)}. Use the backbone\'s out_type=\'cls_token\' or \'featmap\' (for a '
                     'ViT, \'raw\' tokens are ambiguous: with or without the cls token).')


@LOOPS.register_module()
class KNNTestLoop(TestLoop):
    """Weighted k-NN classification of a frozen encoder's features (DINO's protocol) as the test loop.

    The features of every image of ``memory_dataloader`` (the training split, with the test pipeline) form
    the memory bank, gathered from all ranks (a sample that a padding sampler gives twice is kept once,
    by its ``sample_idx``). Each test image is then classified by :func:`~saim_mm.evaluation.knn_classify`
    against the bank, and its scores and predicted label go to the test evaluator (e.g. mmpretrain's
    ``Accuracy`` with ``prefix='knn'``: ``knn/top1``). The features are those of ``model.extract_feat``
    (see :func:`image_features`); the model is any mmpretrain ``ImageClassifier`` (``head`` may be None).
    Every rank keeps the whole bank on the model's device (ImageNet, ViT-B: 1.28M x 768 float32, 3.9 GB).

    Used as ``test_cfg = dict(type='KNNTestLoop', memory_dataloader=dict(...), k=20, temperature=0.07)``.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): Query images (the test split).
        evaluator (Evaluator | dict | list): Metrics of the predictions.
        memory_dataloader (DataLoader | dict): Images of the memory bank, with labels.
        k (int): Neighbours per query. Defaults to 20.
        temperature (float): Temperature of the vote weights ``exp(similarity / T)``. Defaults to 0.07.
        chunk_size (int): Queries per similarity block (``chunk_size x N`` floats). Defaults to 1024.
        num_classes (int, optional): Defaults to the number of ``classes`` of the memory data set.
        fp16 (bool): Extract the features under autocast. Defaults to False.
    """

    def __init__(self, runner, dataloader: Union[DataLoader, Dict], evaluator: Union[Dict, List],
                 memory_dataloader: Union[DataLoader, Dict], k: int = 20, temperature: float = 0.07,
                 chunk_size: int = 1024, num_classes: Optional[int] = None, fp16: bool = False) -> None:
        super().__init__(runner, dataloader, evaluator, fp16=fp16)
        if isinstance(memory_dataloader, dict):
            diff_rank_seed = runner._randomness_cfg.get('diff_rank_seed', False)  # as BaseLoop builds its loader
            memory_dataloader = runner.build_dataloader(memory_dataloader, seed=runner.seed,
                                                        diff_rank_seed=diff_rank_seed)
        self.memory_dataloader = memory_dataloader
        if num_classes is None:
            classes = getattr(memory_dataloader.dataset, 'metainfo', {}).get('classes')
            if not classes:
                raise ValueError('KNNTestLoop: the memory data set has no metainfo["classes"]; set '
                                 'test_cfg.num_classes.')
            num_classes = len(classes)
        self.num_classes = num_classes
        self.k, self.temperature, self.chunk_size = k, temperature, chunk_size

    @property
    def module(self) -> torch.nn.Module:
        """The model without its distributed wrapper."""
        model = self.runner.model
        return model.module if is_model_wrapper(model) else model

    def extract(self, data_batch: dict) -> Tuple[Tensor, list]:
        """(B, C) float32 features of a batch and its data samples."""
        data = self.module.data_preprocessor(data_batch, False)
        with autocast(enabled=self.fp16):
            feats = self.module.extract_feat(data['inputs'])
        return image_features(feats).float(), data['data_samples']

    @torch.no_grad()
    def memory_bank(self) -> Tuple[Tensor, Tensor]:
        """(N, C) features and (N, ) labels of the memory data set, in data set order, on every rank."""
        feats, labels, indices = [], [], []
        for data_batch in self.memory_dataloader:
            batch_feats, samples = self.extract(data_batch)
            feats.append(batch_feats)
            labels += [int(s.gt_label[0]) for s in samples]
            indices += [s.get('sample_idx', len(indices) + i) for i, s in enumerate(samples)]
            if get_world_size() > 1 and 'sample_idx' not in samples[0]:
                raise KeyError('KNNTestLoop: distributed k-NN needs sample_idx in the data samples (mmpretrain\'s '
                               'PackInputs keeps it by default) to drop the samples a sampler repeats.')
        if not feats:
            raise ValueError('KNNTestLoop: the memory data loader gave no images.')
        device = feats[0].device
        feats = all_gather_rows(torch.cat(feats))
        labels = all_gather_rows(torch.tensor(labels, device=device))
        indices = all_gather_rows(torch.tensor(indices, device=device))
        unique, inverse = torch.unique(indices, return_inverse=True)  # sorted data set indices
        first = torch.full_like(unique, len(indices)).scatter_reduce_(
            0, inverse, torch.arange(len(indices), device=device), reduce='amin')
        return feats[first], labels[first]

    def run(self) -> dict:
        """Build the memory bank, classify the test set, return the evaluator's metrics."""
        self.runner.call_hook('before_test')
        self.runner.call_hook('before_test_epoch')
        self.runner.model.eval()
        self.bank, self.bank_labels = self.memory_bank()
        print_log(f'k-NN memory bank: {self.bank.size(0)} features of {self.bank.size(1)} channels, '
                  f'{self.num_classes} classes; k={self.k}, T={self.temperature}', logger='current')
        for idx, data_batch in enumerate(self.dataloader):
            self.run_iter(idx, data_batch)
        metrics = self.evaluator.evaluate(len(self.dataloader.dataset))
        self.runner.call_hook('after_test_epoch', metrics=metrics)
        self.runner.call_hook('after_test')
        return metrics

    @torch.no_grad()
    def run_iter(self, idx: int, data_batch: dict) -> None:
        """Classify one batch of test images and hand the predictions to the evaluator."""
        self.runner.call_hook('before_test_iter', batch_idx=idx, data_batch=data_batch)
        feats, samples = self.extract(data_batch)
        scores = knn_classify(self.bank, self.bank_labels, feats, self.num_classes, k=self.k,
                              temperature=self.temperature, chunk_size=self.chunk_size)
        for sample, score in zip(samples, scores):
            sample.set_pred_score(score).set_pred_label(score.argmax())
        self.evaluator.process(data_samples=samples, data_batch=data_batch)
        self.runner.call_hook('after_test_iter', batch_idx=idx, data_batch=data_batch, outputs=samples)
