#!/usr/bin/env bash
# Session 12, call 5 (nvidia-h200-x2; carry .whl): the kernel bench of this tree beside FLA 0.6 and SDPA.
# GPU 0: every method (`mqar bench kernels`, no filter); GPU 1: the issue's methods only (ours auto / parallel /
# chunked rebased, FLA parallel_rebased, SDPA), a second run on the other H200 and a fallback if GPU 0's is cut.
set -u
out=/tmp/s12c5; mkdir -p $out
export PYTHONPATH=$PWD
python3 -m pip install --no-deps -q .whl/*.whl > $out/pip.log 2>&1; python3 -c "import fla; print('fla', fla.__version__)" >> $out/pip.log 2>&1
python3 -c "import mqar.provenance as p; print(p.source_digest())" > $out/source.txt 2>&1
( CUDA_VISIBLE_DEVICES=0 timeout 450 python3 -m mqar bench kernels --out $out/all --rep-ms 40 > $out/all.log 2>&1
  echo "exit $? at $SECONDS s" >> $out/all.log ) &
( CUDA_VISIBLE_DEVICES=1 timeout 450 python3 -m mqar bench kernels --out $out/issue --rep-ms 40 \
    --method 'ours auto rebased' --method 'ours parallel rebased' --method 'ours chunked rebased' \
    --method 'fla parallel_rebased' --method sdpa > $out/issue.log 2>&1
  echo "exit $? at $SECONDS s" >> $out/issue.log ) &
wait
cd /tmp && tar czf $OUT/s12c5.tar.gz s12c5 && ls -R s12c5
