"""The SAIM model: what each part computes and where a new one goes.

SAIM (``algorithms/saim.py``) pre-trains a ViT by predicting the patches of an image one after another in
a generation order ``z`` drawn per sample:

1. ``orders/``: the order, a (B, N) permutation of the patches (``'stochastic'`` in the paper). A new
   order is a registered ``BaseGenerationOrder`` subclass with a ``name`` (``orders/base_order.py``).
2. ``backbones/saim_vit.py``: the encoder, the content stream. Patch tokens are permuted into ``z``, so
   the paper's permutation mask becomes the plain causal mask (``utils/generation_order.py``).
3. ``necks/``: the decoder, the query stream. Queries start from the position of the patch to predict
   and read the content stream before it; a head maps them to predictions. A new decoder implements
   ``BaseDecoder`` (``necks/base_decoder.py``).
4. ``heads/``: the target and its loss (Gaussian-smoothed pixels; HOG; a teacher's patch features). A new
   target implements ``BaseTargetHead`` (``heads/base_target_head.py``). ``teachers/``: the frozen networks
   whose features ``FeatureTargetHead`` predicts (EMA of the encoder, a pre-trained ViT, the encoder's
   patch embeddings; ``teachers/base_teacher.py``).
5. ``utils/``: the block every stream is made of (``SAIMTransformerLayer``) and its attention, chosen by
   class; a new attention pattern is a ``SAIMAttention`` subclass (``utils/attention.py``). Attention for
   detection / segmentation only (windows, relative position bias) lives in ``saim_mm/dense/``.

docs/method.md derives the method; docs/extending.md shows a new order, target and decoder at work.
"""
from .algorithms import *  # noqa: F401,F403
from .backbones import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .orders import *  # noqa: F401,F403
from .teachers import *  # noqa: F401,F403
