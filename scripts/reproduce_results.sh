#!/usr/bin/env bash
# Reproduces docs/results.md: classifier + GANMEX on the embedded digits, then the faithfulness
# report on the embedded test split and on the real MNIST test set (IDX files under $MNIST_ROOT/MNIST/raw).
set -euo pipefail
MNIST_ROOT=${MNIST_ROOT:-../shared/data}
NUM_IMAGES=${NUM_IMAGES:-500}

python train.py                                              # classifier -> gan -> evaluate (embedded test split)
python evaluate.py mode=classifier_test eval_dataset=mnist eval_dataset.root="$MNIST_ROOT" eval_dataset.download=false
python scripts/measure_gan.py --n 1000                       # GANMEX vs MDTS validity / proximity, real test digits
python evaluate.py eval_dataset=mnist eval_dataset.root="$MNIST_ROOT" eval_dataset.download=false \
  evaluation.num_images="$NUM_IMAGES" hydra.run.dir=outputs/results_mnist_test
