#!/bin/bash
# Alternates our training figures (an old build, a new build) with the PyTorch peer, as
# ../shared/peers/README.md asks: ours-old, ours-new, peer, per figure, PAIRS times. JSON lines to stdout.
# usage: [THREADS=n] bench/vs-peer.sh OLD_DIR NEW_DIR [PAIRS]   (each DIR holds a built checkout: dist/, node_modules/)
# THREADS (default 2, the peer's default and this machine's cores) is given to both sides.
# FIGS (default "mlp cnn"; "transformer" too) picks the figures; REPEATS (default 3) our rounds, SECS (default 3) the peer's seconds.
set -u
OLD=$1; NEW=$2; PAIRS=${3:-3}; THREADS=${THREADS:-2}; FIGS=${FIGS:-mlp cnn}; REPEATS=${REPEATS:-3}; SECS=${SECS:-3}
PEER=$(dirname "$0")/../../shared/peers/torch_peer.py
OPENBLAS=$(dpkg -L libopenblas0-openmp | grep -m1 "/openblas-openmp$")
for i in $(seq 1 "$PAIRS"); do
  for fig in $FIGS; do
    for who in old new; do
      dir=$OLD; [ $who = new ] && dir=$NEW
      echo "{\"pair\":$i,\"who\":\"$who\",\"loadavg\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}"
      (cd "$dir" && DISTILL_THREADS=$THREADS node dist/bench/main.js --filter "train.$fig" --repeats "$REPEATS")
    done
    echo "{\"pair\":$i,\"who\":\"peer\",\"loadavg\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}"
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE LD_LIBRARY_PATH="$OPENBLAS" \
      GLIBC_TUNABLES=glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=1073741824:glibc.malloc.top_pad=67108864 \
      /usr/bin/python3 "$PEER" --only "$fig" --secs "$SECS" --threads "$THREADS"
  done
done
