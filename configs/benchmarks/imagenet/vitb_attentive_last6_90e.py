# Attentive probe of a frozen SAIM ViT-B/16 on ImageNet-1k over the average of its last 6 blocks (AIM's probe):
# the recipe of vitb_attentive_90e.py (head, AdamW, schedule, data) with the tokens of blocks 7-12 instead of
# the patch tokens after the final norm. The backbone returns the raw (B, 1 + 196, 768) output of each of those
# blocks (out_type='raw', out_indices=[6..11], 0-based), BlockAverageNeck averages them, and the head drops
# the cls token (num_extra_tokens=1). As in AIM, the outputs are averaged as they leave the blocks and the
# trunk's final norm is not applied to any of them: final_norm=False (with it, the last block's output alone
# would be normalised); the checkpoint's ln1 is then reported as an unexpected key and left unused.
#   tools/dist_train.sh configs/benchmarks/imagenet/vitb_attentive_last6_90e.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/saim_vitb_800e_backbone.pth
_base_ = ['./vitb_attentive_90e.py']

num_blocks = 6
model = dict(
    backbone=dict(out_type='raw', out_indices=list(range(12 - num_blocks, 12)), final_norm=False),
    neck=dict(_delete_=True, type='BlockAverageNeck', num_inputs=num_blocks),
    head=dict(num_extra_tokens=1))
