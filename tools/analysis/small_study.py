"""A small multi-seed study on the CPU: SAIM (stochastic and raster order) against MAE and a random encoder.

A smoke version of the paper's comparison (Tables 1 and 3), not a substitute for ImageNet; the study itself
is the package :mod:`saim_mm.study`. Steps:

1. data: ``--data-root DIR`` with class folders ``DIR/train/<class>/*`` and ``DIR/val/<class>/*`` (images
   of any size and any format mmcv reads; greyscale, palette and RGBA images become RGB), or, without it,
   the synthetic 4-class set of ``tools/misc/make_demo_data.py`` (discs, squares, stripes, checkers);
2. pre-training of each row on the training images (labels unused), once per seed (``--seeds``; the seed is
   ``randomness.seed`` of the run and the probes' seed), by ``tools/train.py`` on the row's config with the
   study's data, ``--img-size``, ``--patch-size``, epochs, batch and seed (the schedule scaled to the
   epochs). Rows: ``SAIM stochastic`` (``configs/saim/demo_cpu.py``: a ViT of width 96, 4 blocks, 3 heads),
   ``SAIM raster`` (the same with ``model.order='raster'``, the ViT-iGPT baseline), ``MAE``
   (``configs/baselines/mae_vit-demo-p4_cpu.py``, mmpretrain's MAE on the same encoder), every config
   given with ``--configs`` and ``random init`` (the encoder untrained, one initialisation per seed);
3. frozen features of every encoder (the linear probe config's ViT loaded with the row's encoder weights)
   on a fixed resize (short side) + centre crop to ``--img-size``;
4. the protocols of ``configs/benchmarks/demo/`` on the cached features, each seeded: linear probe
   (``linear_cpu.py``) on the cls token and on the mean of the patch tokens, attentive probe
   (``attentive_cpu.py``) on the patch tokens, k-NN (``knn_cpu.py``) on the cls token and the mean; the
   probe flags override the keys their help names; top-1 (%) on the held-out images;
5. a markdown table (mean ± sample standard deviation over the seeds), ``study.json`` (every per-seed
   figure, the arguments, the wall and CPU time, the command, machine, versions and UTC date),
   ``loss_curves.png`` and ``protocols.png``.

Few labels: ``--labels-per-class K [K ...]`` and/or ``--label-fraction F [F ...]`` add, for every
protocol, a column trained (the k-NN memory bank built) on K images per class or a fraction F of each
class, ``--label-draws R`` stratified draws each (reproducible from seed and draw, the same images for
every row), evaluated on every held-out image and summarised over seeds x draws
(:mod:`saim_mm.study.labels`); their bars go to ``few_label.png``.

A row whose ``PretrainedTeacher`` is another row's encoder (the D-iGPT demo's teacher is the SAIM demo's):
``--teacher-from ROW=SOURCE`` points ROW's ``model.head.teacher.checkpoint`` to SOURCE's final checkpoint of
the same seed (the teacher's ViT at the study's sizes) and pre-trains SOURCE first.

``--jobs N`` runs N pre-trainings at once, each with cpu_count / N threads.

    python tools/analysis/small_study.py --work-dir work_dirs/small_study
    python tools/analysis/small_study.py --data-root data/my_images --img-size 64 --patch-size 8
    python tools/analysis/small_study.py --seeds 0 --rows 'SAIM stochastic' MAE \\
        --configs configs/saim/variants/demo/partial_1_6.py
    python tools/analysis/small_study.py --labels-per-class 1 5 --label-fraction 0.1 --label-draws 3
    python tools/analysis/small_study.py --rows 'SAIM stochastic' --configs configs/saim/family/demo/digpt.py \\
        --teacher-from 'configs/saim/family/demo/digpt=SAIM stochastic'
"""
from saim_mm.study.cli import main

if __name__ == '__main__':
    main(description=__doc__.split('\n')[0])
