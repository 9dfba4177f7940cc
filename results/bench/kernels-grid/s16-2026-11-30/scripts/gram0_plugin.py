"""pytest plugin for session 16's call 2: the GPU kernel tests with triton_ops.FWD_GRAM = 0 (load with -p)."""
import mqar.kernels.triton_ops as ops

ops.FWD_GRAM = 0
