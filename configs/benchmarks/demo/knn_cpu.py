# CPU demo of k-NN classification: the protocol of vitb_knn.py (k=20, T=0.07, cls token after the final norm)
# on the tiny ViT of configs/saim/demo_cpu.py; memory bank: the 256 training images of
# tools/misc/make_demo_data.py, queries: the 64 held-out ones. With the SAIM checkpoint itself:
#   python tools/test.py configs/benchmarks/demo/knn_cpu.py work_dirs/demo_cpu/epoch_30.pth
_base_ = ['../imagenet/vitb_knn.py']

embed_dims, depth, heads, patch, img = 96, 4, 3, 4, 32
model = dict(
    data_preprocessor=dict(num_classes=4),
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=embed_dims, num_layers=depth, num_heads=heads,
                  feedforward_channels=4 * embed_dims),
        img_size=img,
        patch_size=patch))

data_root = 'data/demo'
test_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='ResizeEdge', scale=36, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=img),
    dict(type='PackInputs')
]
test_dataloader = dict(
    batch_size=64,
    num_workers=1,
    pin_memory=False,
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root, data_prefix='val',
                 pipeline=test_pipeline))
test_cfg = dict(
    memory_dataloader=dict(
        batch_size=64,
        num_workers=1,
        pin_memory=False,
        dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root, data_prefix='train',
                     pipeline=test_pipeline)))
test_evaluator = dict(topk=(1, ))  # 4 classes: no top-5
env_cfg = dict(dist_cfg=dict(backend='gloo'))
work_dir = './work_dirs/demo_knn_cpu'
