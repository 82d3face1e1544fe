#!/usr/bin/env python3
"""Trains the demo's language model: a GPT-2-style decoder-only transformer (4 layers, 4 heads,
width 128, context 128, character vocabulary) on the fortune cookies of Debian's `fortunes` package,
with Debian's python3-torch on the CPU (with STEPS=N, deterministic for a given corpus, torch build
and thread count).

Writes demo/lm/f32/ and demo/lm/bf16/: the same weights as F32 and as BF16 safetensors, each sharded
into two files with model.safetensors.index.json, plus config.json (GPT-2's keys and names, weights
in GPT-2's Conv1D [in, out] layout, tied lm_head), tokenizer.json (a character vocabulary, a BPE with
no merges), tokenizer_config.json and generation_config.json. Then pack it: npm run demo:pack-lm.

  apt-get install fortunes python3-torch && /usr/bin/python3 scripts/train-lm.py
  (npm run demo:train-lm, which then formats the JSON files as biome does). It runs at nice 10 and
  trains for SECONDS_BUDGET seconds (default 780: 13 minutes), the learning rate following the elapsed
  fraction, so the number of steps depends on the machine and its load; STEPS=N trains exactly N steps
  instead (deterministic). Debian's torch calls the system BLAS: with the
  reference libblas it is several times slower than with OpenBLAS (libopenblas0-pthread), which the
  script puts first on LD_LIBRARY_PATH where installed.
"""

import json
import math
import os
import struct
import sys
import time

# Debian's torch calls the system BLAS; the reference libblas is several times slower than OpenBLAS.
# Where libopenblas0-pthread is installed, run again with it first on the library path.
OPENBLAS = "/usr/lib/x86_64-linux-gnu/openblas-pthread"
if os.path.isdir(OPENBLAS) and OPENBLAS not in os.environ.get("LD_LIBRARY_PATH", ""):
    os.environ["LD_LIBRARY_PATH"] = ":".join(filter(None, [OPENBLAS, os.environ.get("LD_LIBRARY_PATH")]))
    os.execv(sys.executable, [sys.executable, *sys.argv])

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

FORTUNES = "/usr/share/games/fortunes"
OUT = os.environ.get("LM_OUT") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "demo", "lm")
N_LAYER, N_HEAD, N_EMBD, N_CTX = 4, 4, 128, 128
# A time budget (the learning-rate schedule follows the elapsed fraction of it), or a fixed STEPS.
SECONDS = float(os.environ.get("SECONDS_BUDGET", "780"))
STEPS = int(os.environ.get("STEPS", "0"))
BATCH = int(os.environ.get("BATCH", "16"))
LR = float(os.environ.get("LR", "3e-3"))
WARMUP = 20
SEED = 1234
EOT = "<|endoftext|>"
# Printable ASCII and the newline; a fortune with anything else (tabs become spaces) is left out.
CHARS = ["\n"] + [chr(c) for c in range(32, 127)]
VOCAB = [EOT] + CHARS


def corpus():
    if not os.path.isdir(FORTUNES):
        sys.exit(f"{FORTUNES} is missing: apt-get install fortunes")
    files = sorted(
        f for f in os.listdir(FORTUNES)
        if not f.endswith((".dat", ".u8")) and os.path.isfile(os.path.join(FORTUNES, f))
    )
    allowed = set(CHARS)
    kept, dropped = [], 0
    for name in files:
        with open(os.path.join(FORTUNES, name), encoding="utf-8", errors="replace") as f:
            text = f.read()
        for fortune in text.split("\n%\n"):
            fortune = fortune.replace("\t", "    ").strip("\n%")
            if not fortune:
                continue
            if set(fortune) <= allowed:
                kept.append(fortune)
            else:
                dropped += 1
    return files, kept, dropped


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1 = torch.nn.LayerNorm(N_EMBD)
        self.c_attn = torch.nn.Linear(N_EMBD, 3 * N_EMBD)
        self.c_proj = torch.nn.Linear(N_EMBD, N_EMBD)
        self.ln_2 = torch.nn.LayerNorm(N_EMBD)
        self.c_fc = torch.nn.Linear(N_EMBD, 4 * N_EMBD)
        self.mlp_proj = torch.nn.Linear(4 * N_EMBD, N_EMBD)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(N_EMBD, dim=2)
        hd = c // N_HEAD
        q, k, v = (z.view(b, t, N_HEAD, hd).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        mask = torch.ones(t, t, dtype=torch.bool).tril()
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, c)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = torch.nn.Embedding(len(VOCAB), N_EMBD)
        self.wpe = torch.nn.Embedding(N_CTX, N_EMBD)
        self.h = torch.nn.ModuleList(Block() for _ in range(N_LAYER))
        self.ln_f = torch.nn.LayerNorm(N_EMBD)
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                torch.nn.init.zeros_(p)
            elif "ln" not in name:
                std = 0.02 / math.sqrt(2 * N_LAYER) if name.endswith(("c_proj.weight", "mlp_proj.weight")) else 0.02
                torch.nn.init.normal_(p, std=std)

    def forward(self, idx):
        t = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(t))
        for block in self.h:
            x = block(x)
        return self.ln_f(x) @ self.wte.weight.T  # tied lm_head


def gpt2_tensors(model):
    """The weights under GPT-2's names, Linear weights transposed to Conv1D's [in, out]."""
    out = {"transformer.wte.weight": model.wte.weight, "transformer.wpe.weight": model.wpe.weight}
    for i, blk in enumerate(model.h):
        p = f"transformer.h.{i}."
        out[p + "ln_1.weight"] = blk.ln_1.weight
        out[p + "ln_1.bias"] = blk.ln_1.bias
        out[p + "attn.c_attn.weight"] = blk.c_attn.weight.T
        out[p + "attn.c_attn.bias"] = blk.c_attn.bias
        out[p + "attn.c_proj.weight"] = blk.c_proj.weight.T
        out[p + "attn.c_proj.bias"] = blk.c_proj.bias
        out[p + "ln_2.weight"] = blk.ln_2.weight
        out[p + "ln_2.bias"] = blk.ln_2.bias
        out[p + "mlp.c_fc.weight"] = blk.c_fc.weight.T
        out[p + "mlp.c_fc.bias"] = blk.c_fc.bias
        out[p + "mlp.c_proj.weight"] = blk.mlp_proj.weight.T
        out[p + "mlp.c_proj.bias"] = blk.mlp_proj.bias
    out["transformer.ln_f.weight"] = model.ln_f.weight
    out["transformer.ln_f.bias"] = model.ln_f.bias
    return {k: v.detach().contiguous() for k, v in out.items()}


def safetensors_bytes(tensors, dtype):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        if dtype == "BF16":
            data = t.to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").tobytes()
        else:
            data = t.to(torch.float32).numpy().astype("<f4").tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pt"}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + b"".join(blobs)


def write_model(directory, tensors, dtype, config, tokenizer):
    os.makedirs(directory, exist_ok=True)
    names = list(tensors)
    first = [n for n in names if not n.startswith(("transformer.h.2.", "transformer.h.3.", "transformer.ln_f."))]
    shards = [first, [n for n in names if n not in first]]
    weight_map, total = {}, 0
    for i, shard in enumerate(shards):
        file = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        data = safetensors_bytes({n: tensors[n] for n in shard}, dtype)
        with open(os.path.join(directory, file), "wb") as f:
            f.write(data)
        for n in shard:
            weight_map[n] = file
            total += tensors[n].numel() * (2 if dtype == "BF16" else 4)
    files = {
        "model.safetensors.index.json": {"metadata": {"total_size": total}, "weight_map": weight_map},
        "config.json": {**config, "torch_dtype": "bfloat16" if dtype == "BF16" else "float32"},
        "tokenizer.json": tokenizer,
        "tokenizer_config.json": {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": N_CTX,
            "bos_token": EOT,
            "eos_token": EOT,
            "unk_token": EOT,
            "clean_up_tokenization_spaces": False,
        },
        "generation_config.json": {"bos_token_id": 0, "eos_token_id": 0, "do_sample": True, "temperature": 0.8, "top_k": 40},
    }
    for name, value in files.items():
        with open(os.path.join(directory, name), "w") as f:
            f.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def main():
    os.nice(10)  # a shared machine: the other processes first
    torch.manual_seed(SEED)
    # One thread: on a shared 2-core machine at nice 10, two OpenMP threads spend most of their time
    # waiting for each other (measured: 2.9 s a step with 2 threads, 0.4 s with 1, same losses).
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))
    files, fortunes, dropped = corpus()
    stoi = {ch: i for i, ch in enumerate(VOCAB)}
    ids = []
    for fortune in fortunes:
        ids.append(0)
        ids.extend(stoi[ch] for ch in fortune)
    data = torch.tensor(ids, dtype=torch.long)
    n_val = len(data) // 20
    # Fortunes are shuffled by their order in the files only; hold out the last 5% of the stream.
    train, val = data[:-n_val], data[-n_val:]
    print(f"corpus: {len(files)} files, {len(fortunes)} fortunes ({dropped} with other characters left out), "
          f"{len(data)} characters, vocabulary {len(VOCAB)}", flush=True)

    model = GPT()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {N_LAYER} layers, {N_HEAD} heads, width {N_EMBD}, context {N_CTX}, {n_params} parameters", flush=True)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=LR, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(SEED)

    def batch(source, g):
        start = torch.randint(len(source) - N_CTX - 1, (BATCH,), generator=g)
        x = torch.stack([source[s:s + N_CTX] for s in start])
        y = torch.stack([source[s + 1:s + N_CTX + 1] for s in start])
        return x, y

    def val_loss():
        model.eval()
        g = torch.Generator().manual_seed(SEED + 1)
        with torch.no_grad():
            losses = [F.cross_entropy(model(x).flatten(0, 1), y.flatten()).item() for x, y in (batch(val, g) for _ in range(8))]
        model.train()
        return sum(losses) / len(losses)

    t0 = time.time()
    smoothed = math.log(len(VOCAB))
    step = 0
    while True:
        done = step / STEPS if STEPS else (time.time() - t0) / SECONDS
        if done >= 1:
            break
        lr = LR * min(1.0, (step + 1) / WARMUP) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * done)))
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = batch(train, gen)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        smoothed = 0.95 * smoothed + 0.05 * loss.item()
        if step % 50 == 0:
            print(f"step {step}: loss {smoothed:.3f} lr {lr:.2e} ({time.time() - t0:.0f} s)", flush=True)
        step += 1
    seconds = time.time() - t0
    final_val = val_loss()
    print(f"trained {step} steps in {seconds:.0f} s: train loss {smoothed:.3f}, validation loss {final_val:.3f} "
          f"(nats per character)", flush=True)

    config = {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": len(VOCAB),
        "n_positions": N_CTX,
        "n_ctx": N_CTX,
        "n_embd": N_EMBD,
        "n_layer": N_LAYER,
        "n_head": N_HEAD,
        "n_inner": 4 * N_EMBD,
        "activation_function": "gelu_new",
        "layer_norm_epsilon": 1e-5,
        "tie_word_embeddings": True,
        "bos_token_id": 0,
        "eos_token_id": 0,
        "training": {
            "corpus": "Debian package fortunes (" + ", ".join(files) + ")",
            "fortunes": len(fortunes),
            "characters": len(data),
            "steps": step,
            "batch": BATCH,
            "lr": LR,
            "seconds": round(seconds),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "train_loss": round(smoothed, 4),
            "validation_loss": round(final_val, 4),
        },
    }
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": 0, "content": EOT, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True}],
        "normalizer": None,
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": None,
        "model": {"type": "BPE", "dropout": None, "unk_token": EOT, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "vocab": {ch: i for i, ch in enumerate(VOCAB)}, "merges": []},
    }
    tensors = gpt2_tensors(model)
    write_model(os.path.join(OUT, "f32"), tensors, "F32", config, tokenizer)
    write_model(os.path.join(OUT, "bf16"), tensors, "BF16", config, tokenizer)
    print(f"wrote {os.path.normpath(OUT)}/f32 and /bf16", flush=True)


if __name__ == "__main__":
    main()
