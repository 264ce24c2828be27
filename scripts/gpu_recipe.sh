#!/usr/bin/env bash
# A training recipe on a lent GPU machine (the `device` tool), in one call, its outputs brought back.
#
# Here, once (the two packages the GPU image lacks, as Python 3.12 wheels; .whl/ is git-ignored):
#     bash scripts/gpu_recipe.sh --fetch-wheels
# Then one device run, with carry [".whl"], the command:
#     bash scripts/gpu_recipe.sh copy-branch --jobs 4
# It trains `python -m train recipe NAME` into runs/NAME (resumable: a second call on the same warm
# machine goes on where the first stopped), and writes to $OUT: assets.tgz (every exported
# checkpoint and assets/eval), timings.json and the recipe's log. Unpack with
#     tar xzf assets.tgz -C runs/NAME
# and compare against what ships before replacing assets/ (docs/results.md says how each attempt was judged).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--fetch-wheels" ]]; then
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl rapidfuzz plotly
    ls -la .whl
    exit 0
fi
if [[ $# -lt 1 ]]; then
    echo "usage: bash scripts/gpu_recipe.sh NAME [python -m train recipe flags]   (or --fetch-wheels, here)" >&2
    exit 2
fi
name=$1
shift
out=${OUT:-runs/$name/out}
mkdir -p "$out" "runs/$name"
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
# no progress bars: the call's output tail is the log's last lines
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TQDM_DISABLE=1
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '')"
status=0
python3 -m train recipe "$name" --out "runs/$name" --assets "runs/$name/assets" "$@" 2>&1 | tee "$out/recipe.log" \
    || status=$?
cp "runs/$name/timings.json" "$out/" 2>/dev/null || true
[[ -d "runs/$name/assets" ]] && tar czf "$out/assets.tgz" -C "runs/$name" assets
exit $status
