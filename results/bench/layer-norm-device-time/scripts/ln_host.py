"""Host time of one Triton LayerNorm fwd+bwd (the quick bench: 0.67 ms by do_bench against 0.023 ms of device time)."""
import cProfile, pstats, time, torch
from mqar.kernels.layer_norm import layer_norm
x = torch.randn(4096, 128, device="cuda", requires_grad=True)
w = torch.randn(128, device="cuda", requires_grad=True); b = torch.randn(128, device="cuda", requires_grad=True)
grad = torch.randn(4096, 128, device="cuda")
fwd = lambda: layer_norm(x, w, b, impl="triton", out_dtype=torch.float32)
step = lambda: torch.autograd.grad(fwd(), [x, w, b], grad)
for f, name in ((fwd, "fwd"), (step, "fwd+bwd")):
    for _ in range(20): f()
    torch.cuda.synchronize(); t = time.perf_counter()
    for _ in range(200): f()
    host = (time.perf_counter() - t) / 200 * 1e3; torch.cuda.synchronize()
    print(f"{name}: host {host:.3f} ms per call (no sync inside)")
pr = cProfile.Profile(); pr.enable()
for _ in range(200): step()
torch.cuda.synchronize(); pr.disable()
pstats.Stats(pr).sort_stats("tottime").print_stats(22)
