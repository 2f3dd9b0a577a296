"""The paper's formulation of SAIM: tokens in raster position, explicit permutation masks (Eq. 3).

This is the oracle that the production path (both streams in generation order through
``SAIMTransformerLayer``) must match. It builds additive masks of shape (B, 1, N+1, N+1) and runs its own
eager softmax attention on the blocks' weights, as the authors' release does; it shares no attention code
with the model package, so a mistake there cannot hide here. It is never used for training: the tests use
it as the oracle and ``tools/analysis/benchmark_pretrain.py`` as the baseline.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor


def permutation_masks(order: Tensor, dtype: torch.dtype = torch.float32, segment_size: int = 1,
                      prefix_len: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """Content and query masks of the paper for a generation order.

    Token 0 is the cls token, token ``1 + i`` is patch ``i``. With ``rank[i]`` the step at which patch ``i``
    is generated: patch i sees patch j in the content stream iff ``rank[j] <= rank[i]`` and in the query
    stream iff ``rank[j] < rank[i]``; every patch sees the cls token; the cls token sees only itself. With
    segments of ``segment_size`` G steps generated together, the ranks are those of the segments
    (``rank // G``). With a prefix of P_b steps (AIM), a patch of sample b also sees, in the content stream,
    every patch generated in the first P_b steps (``rank[j] < P_b``); the query mask does not change.

    Args:
        order (Tensor): (B, N) generation order.
        dtype (torch.dtype): dtype of the additive masks.
        segment_size (int): G. Defaults to 1.
        prefix_len (Tensor, optional): (B,) prefix length of each sample. Defaults to none.

    Returns:
        tuple[Tensor, Tensor]: additive content and query masks, each (B, 1, N+1, N+1), 0 where attention
        is allowed and -inf elsewhere.
    """
    B, N = order.shape
    rank = torch.argsort(order, dim=1) // segment_size
    allowed_c = rank[:, None, :] <= rank[:, :, None]  # [b, i, j]: i sees j
    if prefix_len is not None:
        in_prefix = rank < prefix_len.to(order.device)[:, None]  # [b, j]: patch j is a prefix patch of sample b
        allowed_c = allowed_c | in_prefix[:, None, :]
    allowed_q = rank[:, None, :] < rank[:, :, None]
    masks = []
    for allowed in (allowed_c, allowed_q):
        full = torch.zeros(B, N + 1, N + 1, dtype=torch.bool, device=order.device)
        full[:, 1:, 1:] = allowed
        full[:, :, 0] = True  # everyone sees the cls token; the cls row sees only itself
        mask = torch.zeros(B, 1, N + 1, N + 1, dtype=dtype, device=order.device)
        masks.append(mask.masked_fill(~full[:, None], float('-inf')))
    return masks[0], masks[1]


def masked_block_forward(layer: torch.nn.Module, x: Tensor, mask: Tensor,
                         context: Optional[Tensor] = None) -> Tensor:
    """One pre-norm ViT block with eager softmax attention and an additive mask.

    Args:
        layer (nn.Module): mmpretrain ``TransformerEncoderLayer``.
        x (Tensor): (B, L, C) queries (and keys/values when ``context`` is None).
        mask (Tensor): (B, 1, L, L) additive mask.
        context (Tensor, optional): (B, L, C) keys/values.

    Returns:
        Tensor: (B, L, C).
    """
    attn = layer.attn
    B, L, C = x.shape
    heads, dh = attn.num_heads, C // attn.num_heads
    kv_in = layer.ln1(x if context is None else context)
    weight, bias = attn.qkv.weight, attn.qkv.bias
    q, k, v = (torch.nn.functional.linear(inp, weight[i * C:(i + 1) * C],
                                          None if bias is None else bias[i * C:(i + 1) * C])
               for i, inp in enumerate((layer.ln1(x), kv_in, kv_in)))
    q, k, v = (t.reshape(B, L, heads, dh).transpose(1, 2) for t in (q, k, v))
    scores = (q @ k.transpose(-2, -1)) * dh**-0.5 + mask
    out = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(B, L, C)
    x = x + attn.out_drop(attn.gamma1(attn.proj_drop(attn.proj(out))))
    return layer.ffn(layer.ln2(x), identity=x)


def dense_mask_predictions(model: torch.nn.Module, inputs: Tensor, order: Tensor,
                           prefix_len: Optional[Tensor] = None) -> Tensor:
    """Predictions of a ``SAIM`` model computed with the paper's dense masks.

    Args:
        model (SAIM): the algorithm (its backbone, neck and head weights are used).
        inputs (Tensor): (B, 3, H, W) normalised images.
        order (Tensor): (B, N) generation order.
        prefix_len (Tensor, optional): (B,) prefix length of each sample (AIM's prefix in the content
            stream, :func:`permutation_masks`). Defaults to none.

    Returns:
        Tensor: (B, N, out) predictions of every patch, row i for patch i (raster position, not generation
        order); a model that predicts only the last K steps is compared at those patches.
    """
    backbone, neck = model.backbone, model.neck
    B = inputs.shape[0]
    content_mask, query_mask = permutation_masks(order, inputs.dtype, model.order_generator.segment_size,
                                                 prefix_len)
    tokens = backbone.patch_embed(inputs)[0] + backbone.pos_embed[:, 1:]
    cls = (backbone.cls_token + backbone.pos_embed[:, :1]).expand(B, -1, -1)
    h = torch.cat([cls, tokens], dim=1)
    if neck.context_embeds is None:
        g = backbone.pos_embed.expand(B, -1, -1)
    else:  # a narrow decoder's own query table; the cls slot's query is never read
        g = torch.cat([torch.zeros_like(neck.query_pos[:, :1]), neck.query_pos], dim=1).expand(B, -1, -1)
    num_dec = neck.num_layers
    dec_layers = neck.layers if neck.layers is not None else backbone.layers[:num_dec]
    reads = dict((index, j) for j, index in enumerate(neck.context_indices(backbone.num_layers)))
    for i, layer in enumerate(backbone.layers):
        h = masked_block_forward(layer, h, content_mask)
        if i in reads:
            j = reads[i]
            context = h if neck.context_embeds is None else neck.context_embeds[j](h)
            g = masked_block_forward(dec_layers[j], g, query_mask, context=context)
    if num_dec:
        source = g[:, 1:]
    else:
        # Depth 0: patch z_0 is predicted from the cls output, patch z_t from the output at z_{t-1}.
        prev = torch.cat([torch.zeros_like(order[:, :1]), order[:, :-1] + 1], dim=1)  # token per step
        src_token = torch.empty_like(order).scatter_(1, order, prev)  # token per patch
        source = torch.gather(h, 1, src_token[..., None].expand(-1, -1, h.shape[-1]))
    return neck.predict(source)
