# k-NN classification of a frozen SAIM ViT-B/16 on ImageNet-1k (DINO's protocol): the cls token after the
# final norm of every training image (test pipeline: short edge 256, centre crop 224) is the memory bank;
# each validation image takes the labels of its k=20 nearest (cosine) neighbours, weighted by exp(cos / 0.07)
# (saim_mm.engine.KNNTestLoop; set model.backbone.out_type=featmap for the mean of the patch tokens).
# Nothing is trained: the checkpoint is the test tool's, a SAIM pre-training checkpoint (backbone.*,
# neck.* unused), a saim2backbone.py output or any mmpretrain ViT-B/16 checkpoint:
#   tools/dist_test.sh configs/benchmarks/imagenet/vitb_knn.py work_dirs/saim_vitb_800e/epoch_800.pth 8
_base_ = [
    '../../_base_/models/vit-base-p16_saim-linear.py',
    '../../_base_/datasets/imagenet_saim_linear.py',
    '../../_base_/imagenet_benchmark_runtime.py',
]

# frozen_stages=0: nothing is trained, and DistributedDataParallel (tools/dist_test.sh) refuses a model
# without a parameter that requires a gradient
model = dict(backbone=dict(frozen_stages=0, init_cfg=None), neck=None, head=None)

test_cfg = dict(
    type='KNNTestLoop',
    k=20,
    temperature=0.07,
    chunk_size=256,  # 256 queries x 1.28M bank features per similarity block (1.3 GB in float32)
    memory_dataloader=dict(
        batch_size=128,
        num_workers=10,
        pin_memory=True,
        sampler=dict(type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='default_collate'),
        dataset=dict(type={{_base_.dataset_type}}, data_root={{_base_.data_root}}, split='train',
                     pipeline={{_base_.test_pipeline}})))
test_evaluator = dict(prefix='knn')  # knn/top1, knn/top5
train_dataloader = None  # nothing is trained (the Runner wants all of these or none)
train_cfg = None
