set -x
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
git log -1 --format=%h; git diff --stat
python .scratch18/time_pad.py 2>&1 | tee $OUT/pad.txt
for pad in False True; do
  timeout 240 python -c "import sys; from mqar.kernels import triton_ops; triton_ops.PAD_VALUES = $pad; from mqar.cli import app; sys.argv = ['mqar'] + sys.argv[1:]; app()" \
    bench train --cases rebased:512:512,based:512:512,rebased:256:512,rebased:128:512 --precision bf16 --paths mqar --steps 20 --out $OUT/train-pad-$pad > $OUT/train-pad-$pad.log 2>&1
  echo "exit $?" >> $OUT/train-pad-$pad.log
done
(cd $OUT && tar czf train.tgz train-pad-False train-pad-True && rm -r train-pad-False train-pad-True)
timeout 240 python -m pytest -m gpu -n 8 -q -k 'not two_to_the_31' tests/ 2>&1 | tail -5 | tee $OUT/gpu-tests.txt
