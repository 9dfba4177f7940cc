set -x
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python .scratch18/time_pad3.py 2>&1 | tee $OUT/pad3.txt
for pad in False True; do
  timeout 200 python -c "import sys; from mqar.kernels import triton_ops; triton_ops.PAD_VALUES = $pad; from mqar.cli import app; sys.argv = ['mqar'] + sys.argv[1:]; app()" \
    bench train --cases rebased:512:512,rebased:256:512,rebased:512:256 --precision fp32 --paths mqar --steps 10 --out $OUT/train-fp32-pad-$pad > $OUT/train-fp32-pad-$pad.log 2>&1
  echo "exit $?" >> $OUT/train-fp32-pad-$pad.log
done
(cd $OUT && tar czf train-fp32.tgz train-fp32-pad-False train-fp32-pad-True && rm -r train-fp32-pad-False train-fp32-pad-True)
