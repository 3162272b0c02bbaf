#!/usr/bin/env bash
# Train the landmark model on a lent GPU machine in one command; the checkpoint comes back.
#
#   bash tools/landmarks/device_train.sh pack
#       here, once: copies ../shared/data/300w to runs/device_data/300w (37 MB; runs/ is
#       ignored by git, so the device tool must carry it: carry ["runs/device_data"]).
#   bash tools/landmarks/device_train.sh train MINUTES [tools.landmarks.train arguments ...]
#       there (device tool, repository root): trains for about MINUTES on the GPU with
#       tools.landmarks.train (--time-limit; resumable) and leaves last.pt, best.pt and log.csv in
#       $OUT/run, which the device tool brings back. Example:
#       bash tools/landmarks/device_train.sh train 8 --config demo --epochs 400 --coord-loss l1 --lambda-coord 10
#   bash tools/landmarks/device_train.sh resume CHECKPOINT MINUTES [tools.landmarks.train arguments ...]
#       there: continues a run from CHECKPOINT (a last.pt, e.g. the committed
#       tools/checkpoints/full.pt; its recipe, epochs and learning rate come
#       with it) for about MINUTES, into $OUT/run like train. Example:
#       bash tools/landmarks/device_train.sh resume tools/checkpoints/full.pt 8 --eval-every 4
#   Rehearse here on the CPU first, with a tiny run:
#       OUT=/tmp/dev bash tools/landmarks/device_train.sh train 0.1 --config demo --epochs 1 --threads 2
set -euo pipefail
cd "$(dirname "$0")/../.."
case "${1:-}" in
pack)
    src="../shared/data/300w"
    [ -d "$src" ] || { echo "error: $src not found (../shared beside the repository)" >&2; exit 2; }
    mkdir -p runs/device_data
    rm -rf runs/device_data/300w
    cp -r "$src" runs/device_data/300w
    echo "packed $(find runs/device_data/300w -name '*.pts' | wc -l) faces into runs/device_data ($(du -sh runs/device_data | cut -f1)); carry [\"runs/device_data\"]"
    ;;
train|resume)
    resume=()
    if [ "$1" = resume ]; then
        ckpt="${2:?usage: device_train.sh resume CHECKPOINT MINUTES [tools.landmarks.train args]}"
        [ -f "$ckpt" ] || { echo "error: $ckpt not found" >&2; exit 2; }
        shift
        resume=(--resume)
    fi
    minutes="${2:?usage: device_train.sh train MINUTES [tools.landmarks.train args]}"
    shift 2
    : "${OUT:?set OUT to the output folder (the device tool sets it)}"
    if [ ${#resume[@]} -gt 0 ]; then
        mkdir -p "$OUT/run"
        cp "$ckpt" "$OUT/run/last.pt"
        for log in "${ckpt%.pt}_log.csv" "${ckpt%_resume.pt}_log.csv" "$(dirname "$ckpt")/log.csv"; do
            if [ -f "$log" ]; then cp "$log" "$OUT/run/log.csv"; break; fi
        done
    fi
    data="runs/device_data/300w"
    [ -d "$data" ] || { echo "error: $data missing: run 'bash tools/landmarks/device_train.sh pack' and carry runs/device_data" >&2; exit 2; }
    python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
    export PYTHONUNBUFFERED=1
    seconds=$(python3 -c "print(int(float('$minutes') * 60))")
    python3 -m tools.landmarks.train --data "$data" --out "$OUT/run" --time-limit "$seconds" "${resume[@]}" "$@" 2>&1 | tee "$OUT/train.log"
    ;;
*)
    echo "usage: bash tools/landmarks/device_train.sh pack | train MINUTES [args] | resume CHECKPOINT MINUTES [args]" >&2
    exit 2
    ;;
esac
