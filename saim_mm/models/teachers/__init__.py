"""Teachers: the frozen networks whose patch features ``FeatureTargetHead`` predicts (``base_teacher.py``
states the contract): an EMA of the encoder (SemAIM), a pre-trained ViT read from a checkpoint (D-iGPT), the
encoder's own patch embeddings (NEPA)."""
from .base_teacher import BaseTeacher, parameters_to_buffers, vit_patch_tokens
from .ema_teacher import EMATeacher
from .patch_embed_teacher import PatchEmbedTeacher
from .pretrained_teacher import PretrainedTeacher

__all__ = ['BaseTeacher', 'EMATeacher', 'PatchEmbedTeacher', 'PretrainedTeacher', 'parameters_to_buffers',
           'vit_patch_tokens']
