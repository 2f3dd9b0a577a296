#!/usr/bin/env bash
# Regenerates the pictures under docs/assets/ from the CPU demo, with the tools of tools/visualization/:
#   bash tools/misc/make_doc_figures.sh [OUT_DIR]            (default OUT_DIR: docs/assets)
# It draws the demo images, pre-trains the tiny SAIM of configs/saim/demo_cpu.py on the CPU, and writes
#   OUT_DIR/demo_figure.png   the README's figure: vis_reconstruction.py on a disc and a square of the
#                             held-out images (input, smoothed target, prediction, order), then
#                             vis_attention.py on the same two (input, mean attention, head 1..3)
# Environment: PYTHON (default .venv/bin/python), WORK (scratch folder, default work_dirs/doc_figures),
# EPOCHS (pre-training epochs, default 30 as in the demo; the tests use 1), CKPT (a demo_cpu.py checkpoint
# to draw from instead of pre-training, e.g. work_dirs/demo_cpu/epoch_30.pth of the README's demo).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-.venv/bin/python}"
OUT="${1:-docs/assets}"
WORK="${WORK:-work_dirs/doc_figures}"
EPOCHS="${EPOCHS:-30}"
CONFIG=configs/saim/demo_cpu.py
mkdir -p "$OUT" "$WORK"

"$PY" tools/misc/make_demo_data.py "$WORK/data"
if [ -z "${CKPT:-}" ]; then
  "$PY" tools/train.py "$CONFIG" --work-dir "$WORK/demo_cpu" \
    --cfg-options train_dataloader.dataset.data_root="$WORK/data" train_cfg.max_epochs="$EPOCHS"
  CKPT="$(cat "$WORK/demo_cpu/last_checkpoint")"
fi
IMAGES=("$WORK/data/val/disc/disc_0000.png" "$WORK/data/val/square/square_0000.png")

"$PY" tools/visualization/vis_reconstruction.py "$CONFIG" "$CKPT" "${IMAGES[@]}" --tile 96 --seed 0 \
  --out-dir "$WORK/vis"
"$PY" tools/visualization/vis_attention.py "$CONFIG" "$CKPT" "${IMAGES[@]}" --tile 96 --out-dir "$WORK/vis"

"$PY" - "$WORK/vis" "$OUT/demo_figure.png" "${IMAGES[@]}" <<'PY'
import os.path as osp
import sys

from PIL import Image

from saim_mm.visualization import stack_rows

vis, out, images = sys.argv[1], sys.argv[2], sys.argv[3:]
stems = [osp.splitext(osp.basename(p))[0] for p in images]
rows = [Image.open(osp.join(vis, f'{s}_{kind}.png')) for kind in ('reconstruct', 'attention') for s in stems]
stack_rows(rows).save(out, optimize=True)
print(f'{out}: {len(rows)} rows (reconstruction, then attention, of {", ".join(stems)})')
PY
