# Peer for `llmts train --preset=shakespeare-char`: nanoGPT's shakespeare_char CPU recipe, re-typed from
# karpathy/nanoGPT (model.py, train.py: bias=False, tied head, GELU, scaled c_proj init, AdamW decaying 2-D weights,
# warmup + cosine, clip 1.0, random windows), in float32 with TF32 off, over several seeds. Needs PyTorch (not an npm
# dependency: run it where PyTorch is, e.g. the lent GPU machine). Prints one JSON line per seed with nanoGPT's own
# figure at iter 2000 (`val20`: estimate_loss over 20 random validation batches, as the README's CPU command) and a
# precise one (`val2000`: 2,000 random validation batches from a fixed generator, as our --finalEvalBatches=2000).
#   python3 bench/peers/nanogpt-shakespeare-char.py data/tinyshakespeare.txt 1337,1,2 cuda|cpu
import math, sys, json, time, torch, torch.nn as nn, torch.nn.functional as F
path, seeds, dev = sys.argv[1], [int(s) for s in sys.argv[2].split(',')], sys.argv[3]
torch.backends.cuda.matmul.allow_tf32 = False; torch.backends.cudnn.allow_tf32 = False
torch.set_num_threads(2)
text = open(path).read(); chars = sorted(set(text)); stoi = {c: i for i, c in enumerate(chars)}
ids = torch.tensor([stoi[c] for c in text], dtype=torch.long); n = len(ids)
train_data, val_data = ids[:int(n * 0.9)], ids[int(n * 0.9):]
V, L, H, C, T, B = len(chars), 4, 4, 128, 64, 12
max_iters, lr0, min_lr, warmup, decay_iters, eval_interval, eval_iters = 2000, 1e-3, 1e-4, 100, 2000, 250, 20

class LN(nn.Module):
    def __init__(s, d): super().__init__(); s.weight = nn.Parameter(torch.ones(d))
    def forward(s, x): return F.layer_norm(x, s.weight.shape, s.weight, None, 1e-5)
class Attn(nn.Module):
    def __init__(s): super().__init__(); s.c_attn = nn.Linear(C, 3 * C, bias=False); s.c_proj = nn.Linear(C, C, bias=False)
    def forward(s, x):
        b, t, c = x.size(); q, k, v = s.c_attn(x).split(C, dim=2)
        q, k, v = [z.view(b, t, H, c // H).transpose(1, 2) for z in (q, k, v)]
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return s.c_proj(y.transpose(1, 2).contiguous().view(b, t, c))
class MLP(nn.Module):
    def __init__(s): super().__init__(); s.c_fc = nn.Linear(C, 4 * C, bias=False); s.gelu = nn.GELU(); s.c_proj = nn.Linear(4 * C, C, bias=False)
    def forward(s, x): return s.c_proj(s.gelu(s.c_fc(x)))
class Block(nn.Module):
    def __init__(s): super().__init__(); s.ln_1 = LN(C); s.attn = Attn(); s.ln_2 = LN(C); s.mlp = MLP()
    def forward(s, x): x = x + s.attn(s.ln_1(x)); return x + s.mlp(s.ln_2(x))
class GPT(nn.Module):
    def __init__(s):
        super().__init__()
        s.transformer = nn.ModuleDict(dict(wte=nn.Embedding(V, C), wpe=nn.Embedding(T, C), h=nn.ModuleList([Block() for _ in range(L)]), ln_f=LN(C)))
        s.lm_head = nn.Linear(C, V, bias=False); s.transformer.wte.weight = s.lm_head.weight
        s.apply(s._init)
        for pn, p in s.named_parameters():
            if pn.endswith('c_proj.weight'): torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * L))
    def _init(s, m):
        if isinstance(m, (nn.Linear, nn.Embedding)): torch.nn.init.normal_(m.weight, mean=0.0, std=0.02)
    def forward(s, idx, tgt):
        t = idx.size(1); x = s.transformer.wte(idx) + s.transformer.wpe(torch.arange(t, device=idx.device))
        for blk in s.transformer.h: x = blk(x)
        logits = s.lm_head(s.transformer.ln_f(x))
        return F.cross_entropy(logits.view(-1, V), tgt.view(-1))

def get_lr(it):
    if it < warmup: return lr0 * (it + 1) / (warmup + 1)
    if it > decay_iters: return min_lr
    r = (it - warmup) / (decay_iters - warmup); return min_lr + 0.5 * (1 + math.cos(math.pi * r)) * (lr0 - min_lr)

def get_batch(data, g=None):
    ix = torch.randint(len(data) - T, (B,), generator=g)
    x = torch.stack([data[i:i + T] for i in ix]); y = torch.stack([data[i + 1:i + 1 + T] for i in ix])
    return x.to(dev), y.to(dev)

for seed in seeds:
    t0 = time.time(); torch.manual_seed(seed)
    model = GPT().to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{'params': [p for p in params if p.dim() >= 2], 'weight_decay': 0.1}, {'params': [p for p in params if p.dim() < 2], 'weight_decay': 0.0}]
    opt = torch.optim.AdamW(groups, lr=lr0, betas=(0.9, 0.99))
    @torch.no_grad()
    def estimate(data, n, g=None):
        model.eval(); ls = [model(*get_batch(data, g)).item() for _ in range(n)]; model.train(); return sum(ls) / len(ls)
    it, rec = 0, {}
    while True:
        lr = get_lr(it)
        for pg in opt.param_groups: pg['lr'] = lr
        if it % eval_interval == 0:
            tr, va = estimate(train_data, eval_iters), estimate(val_data, eval_iters)
            if it == max_iters: rec['train20'], rec['val20'] = tr, va
        if it == max_iters:
            g = torch.Generator().manual_seed(4242); rec['val2000'] = estimate(val_data, 2000, g); break
        loss = model(*get_batch(train_data)); loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step(); opt.zero_grad(set_to_none=True); it += 1
    rec.update(peer='nanoGPT (PyTorch ' + torch.__version__ + ', fp32, ' + dev + ')', seed=seed, seconds=round(time.time() - t0, 1))
    print(json.dumps(rec), flush=True)
