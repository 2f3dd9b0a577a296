# Linear probe of a frozen SAIM ViT-B/16 on ImageNet-1k on an intermediate block: the recipe of
# vitb_linear_90e.py with the cls token of block index 8 (0-based: the ninth of the twelve blocks, three
# quarters of the depth) instead of the cls token after the last block and the final norm. The output of an
# intermediate block is taken as it leaves the block (mmpretrain applies the final norm after the last block
# only); the probe's BatchNorm without affine parameters normalises it. The block is our choice, not a value
# of the paper: with an autoregressive objective the last blocks serve the prediction of the next patch, and
# layer-wise probes of such models (iGPT, AIM's "best layer" heads) find their best features below the top.
#   tools/dist_train.sh configs/benchmarks/imagenet/vitb_linear_block8_90e.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/saim_vitb_800e_backbone.pth
_base_ = ['./vitb_linear_90e.py']

model = dict(backbone=dict(out_indices=[8]))
