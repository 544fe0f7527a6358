# Copied from ../shared/bench/peers/torch-gpt.py (the project's reference peer) so that the GPU kit (bench/gpu/) carries
# it with the working tree; bench/train.bench.mjs runs it with --backend webgpu. Keep it identical to the shared copy
# apart from this header.
"""PyTorch peer for GPU training benchmarks: one GPT training step (forward + backward + fused AdamW), eager, no
torch.compile. The same block as ../design/ANCHORS.md describes: LayerNorm, fused qkv, scaled_dot_product_attention
(causal), GELU-tanh MLP x4, tied head. Prints one JSON line per case: ms_per_step (median), tok_s, tflops.

  python3 torch-gpt.py                       # every shape in fp32, tf32 and bf16 autocast, on CUDA
  python3 torch-gpt.py --shapes tiny,gpt2 --modes fp32 --steps 20

PyTorch is on the H200 machine (not on the CPU machines)."""
import argparse, json, time
import torch, torch.nn as nn, torch.nn.functional as F

SHAPES = {  # name: (layers, width, heads, vocab, T, B)
    "tiny": (4, 128, 4, 512, 128, 8),
    "tiny-b64": (4, 128, 4, 512, 128, 64),
    "small": (6, 384, 6, 4096, 256, 64),
    "gpt2": (12, 768, 12, 50304, 1024, 16),
}


class Block(nn.Module):
    def __init__(s, C, H):
        super().__init__()
        s.H = H
        s.ln1, s.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
        s.qkv, s.proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        s.fc, s.fc2 = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(s, x):
        B, T, C = x.shape
        q, k, v = s.qkv(s.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, s.H, C // s.H).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + s.proj(y.transpose(1, 2).reshape(B, T, C))
        return x + s.fc2(F.gelu(s.fc(s.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(s, L, C, H, V, T):
        super().__init__()
        s.wte, s.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
        s.blocks = nn.ModuleList([Block(C, H) for _ in range(L)])
        s.lnf = nn.LayerNorm(C)

    def forward(s, idx, tgt):
        x = s.wte(idx) + s.wpe(torch.arange(idx.shape[1], device=idx.device))
        for b in s.blocks:
            x = b(x)
        logits = s.lnf(x) @ s.wte.weight.T
        return F.cross_entropy(logits.view(-1, logits.shape[-1]).float(), tgt.view(-1))


def bench(name, L, C, H, V, T, B, mode, steps):
    torch.manual_seed(0)
    m = GPT(L, C, H, V, T).cuda()
    n = sum(p.numel() for p in m.parameters())
    opt = torch.optim.AdamW(m.parameters(), lr=3e-4, fused=True)
    torch.backends.cuda.matmul.allow_tf32 = mode == "tf32"
    torch.backends.cudnn.allow_tf32 = mode == "tf32"
    idx = torch.randint(0, V, (B, T), device="cuda")
    tgt = torch.randint(0, V, (B, T), device="cuda")

    def step():
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=(mode == "bf16")):
            loss = m(idx, tgt)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    ts = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    ms = ts[len(ts) // 2] * 1e3
    flops_tok = 6 * n + 12 * L * C * T
    print(json.dumps(dict(peer="pytorch-" + torch.__version__, case=name, mode=mode, B=B, T=T, params=n,
                          ms_per_step=round(ms, 3), tok_s=round(B * T / ms * 1e3),
                          tflops=round(flops_tok * B * T / ms / 1e9, 3),
                          peak_mem_gb=round(torch.cuda.max_memory_allocated() / 2**30, 2))), flush=True)
    del m, opt
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--modes", default="fp32,tf32,bf16")
    ap.add_argument("--steps", type=int, default=10)
    a = ap.parse_args()
    for s in a.shapes.split(","):
        for mode in a.modes.split(","):
            bench(s, *SHAPES[s], mode, a.steps)
