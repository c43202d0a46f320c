#!/usr/bin/env bash
# Reproduces docs/results.md: classifier + GANMEX + oracle on the embedded digits, the faithfulness report
# on the real MNIST test set (IDX files under $MNIST_ROOT/MNIST/raw), and the ground-truth run on decoy MNIST.
set -euo pipefail
MNIST_ROOT=${MNIST_ROOT:-../shared/data}
NUM_IMAGES=${NUM_IMAGES:-100}

python train.py                                              # classifier -> gan -> oracle -> evaluate (embedded test split)
python evaluate.py mode=classifier_test eval_dataset=mnist eval_dataset.root="$MNIST_ROOT" eval_dataset.download=false
python evaluate.py mode=gan_quality eval_dataset=mnist eval_dataset.root="$MNIST_ROOT" eval_dataset.download=false \
  evaluation.num_images=1000 hydra.run.dir=outputs/gan_quality_mnist_test   # GANMEX vs MDTS under f and the oracle
python evaluate.py eval_dataset=mnist eval_dataset.root="$MNIST_ROOT" eval_dataset.download=false \
  evaluation.num_images="$NUM_IMAGES" hydra.run.dir=outputs/results_mnist_test
python train.py experiment=decoy_mnist hydra.run.dir=outputs/decoy_run   # ground truth: localisation metrics
python scripts/results_page.py --out docs/results.md                     # the page, from the runs above
