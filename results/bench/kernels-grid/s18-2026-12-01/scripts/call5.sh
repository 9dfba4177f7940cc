# Session 18, call 5 (nvidia-h200; carry .whl): mqar bench kernels on the final tree, beside FLA 0.6 and SDPA
set -x
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit
export PYTHONPATH=$PWD:/tmp/site PYTHONUNBUFFERED=1
python3 -c "import fla; print('fla', fla.__version__)"
git log -1 --format=%h; git status --short | grep -v scratch
timeout 560 python3 -m mqar bench kernels --out $OUT/bench --rep-ms 40 > $OUT/bench.log 2>&1; echo "exit $?" >> $OUT/bench.log
tail -5 $OUT/bench.log
