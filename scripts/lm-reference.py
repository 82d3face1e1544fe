#!/usr/bin/env python3
"""The CPU reference for the demo's language model (demo/lm, scripts/train-lm.py), independent of
the WGSL kernels and of torch: NumPy in float64, reading the sharded safetensors itself (BF16 widened
by shifting into the top half of a float32), and recomputing the whole sequence at every step (no KV
cache). Writes test/fixtures/lm/reference.json: for the f32 and the bf16 weights, the logits of the
first generation steps after a fixed prompt, the greedy continuation, and a seeded top-k sample drawn
as demo/transformer-gpu.ts draws it (mulberry32 uniforms, ranks with ties to the lower id, cumulative
probability in rank order).

  /usr/bin/python3 scripts/lm-reference.py      (npm run demo:lm-reference)
"""

import json
import math
import os
import struct

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MODEL = os.path.join(ROOT, "demo", "lm")
OUT = os.path.join(ROOT, "test", "fixtures", "lm", "reference.json")
PROMPT = "The best way to "
LOGITS_STEPS = 4
GREEDY_TOKENS = 48
SAMPLE = {"temperature": 0.8, "top_k": 40, "tokens": 32}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        data = raw[base + start:base + end]
        if info["dtype"] == "F32":
            a = np.frombuffer(data, dtype="<f4")
        elif info["dtype"] == "BF16":
            a = (np.frombuffer(data, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError(f"{name}: dtype {info['dtype']}")
        out[name] = a.astype(np.float64).reshape(info["shape"])
    return out


def load(directory):
    with open(os.path.join(directory, "model.safetensors.index.json")) as f:
        index = json.load(f)
    weights = {}
    for file in sorted(set(index["weight_map"].values())):
        weights.update(read_safetensors(os.path.join(directory, file)))
    assert set(weights) == set(index["weight_map"]), "the shards do not hold what the index lists"
    with open(os.path.join(directory, "config.json")) as f:
        config = json.load(f)
    return config, weights


def layer_norm(x, g, b, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * g + b


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def logits_of(config, w, ids):
    """Logits for the next token after `ids`: the whole sequence recomputed, causal mask."""
    C, H, eps = config["n_embd"], config["n_head"], config["layer_norm_epsilon"]
    hd = C // H
    t = len(ids)
    x = w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][:t]
    mask = np.triu(np.ones((t, t), dtype=bool), 1)
    for i in range(config["n_layer"]):
        p = f"transformer.h.{i}."
        a = layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
        qkv = a @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
        q, k, v = (qkv[:, j * C:(j + 1) * C].reshape(t, H, hd).transpose(1, 0, 2) for j in range(3))
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
        scores[:, mask] = -np.inf
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
        y = (scores @ v).transpose(1, 0, 2).reshape(t, C)
        x = x + y @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        m = layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
        m = gelu_tanh(m @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"])
        x = x + m @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
    x = layer_norm(x[-1], w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], eps)
    return x @ w["transformer.wte.weight"].T


def mulberry32(seed):
    a = seed & 0xFFFFFFFF

    def imul(x, y):
        return (x * y) & 0xFFFFFFFF

    def draw():
        nonlocal a
        a = (a + 0x6D2B79F5) & 0xFFFFFFFF
        t = a
        t = imul(t ^ (t >> 15), t | 1)
        t ^= (t + imul(t ^ (t >> 7), t | 61)) & 0xFFFFFFFF
        return ((t ^ (t >> 14)) & 0xFFFFFFFF) / 4294967296

    return draw


def ranks(logits):
    # Stable sort on -logit: ties go to the lower id, as the GPU sampler ranks them.
    return list(np.argsort(-logits, kind="stable"))


def sample(logits, temperature, top_k, u):
    """Returns the token and how far the draw was from the nearest boundary, relative to the total."""
    order = ranks(logits)[:top_k]
    best = logits[order[0]]
    p = np.exp((logits[order] - best) / temperature)
    total = p.sum()
    goal = u * total
    edges = np.cumsum(p)
    pick = int(np.searchsorted(edges, goal, side="right"))
    pick = min(pick, top_k - 1)
    gap = float(np.min(np.abs(edges - goal)) / total)
    return int(order[pick]), gap


def run(directory, vocab, eot):
    config, w = load(directory)
    ids = [eot] + [vocab[ch] for ch in PROMPT]
    seq = list(ids)
    steps, greedy, margins = [], [], []
    for n in range(GREEDY_TOKENS):
        logits = logits_of(config, w, seq[-config["n_positions"]:])
        if n < LOGITS_STEPS:
            steps.append([round(float(v), 7) for v in logits])
        top = np.sort(logits)[::-1]
        margins.append(float(top[0] - top[1]))
        token = int(np.argmax(logits))
        greedy.append(token)
        seq.append(token)
        if token == eot:
            break

    # A seed whose draws all land well inside a bucket, so float32 on the GPU picks the same tokens.
    for seed in range(7, 1000):
        draw, seq, sampled, worst = mulberry32(seed), list(ids), [], 1.0
        for _ in range(SAMPLE["tokens"]):
            logits = logits_of(config, w, seq[-config["n_positions"]:])
            token, gap = sample(logits, SAMPLE["temperature"], SAMPLE["top_k"], draw())
            worst = min(worst, gap)
            sampled.append(token)
            seq.append(token)
            if token == eot:
                break
        if worst > 1e-4:
            break
    return {
        "prompt_ids": ids,
        "logits": steps,
        "greedy_ids": greedy,
        "greedy_min_margin": min(margins),
        "sample": {**SAMPLE, "seed": seed, "ids": sampled, "min_relative_gap": worst},
    }


def main():
    with open(os.path.join(MODEL, "f32", "tokenizer.json")) as f:
        vocab = json.load(f)["model"]["vocab"]
    itos = {i: ch for ch, i in vocab.items()}
    eot = vocab["<|endoftext|>"]
    result = {"prompt": PROMPT, "eot": eot, "logits_steps": LOGITS_STEPS, "greedy_tokens": GREEDY_TOKENS}
    for dtype in ("f32", "bf16"):
        r = run(os.path.join(MODEL, dtype), vocab, eot)
        text = "".join(itos[i] for i in r["greedy_ids"] if i != eot)
        r["greedy_text"] = text
        r["sample"]["text"] = "".join(itos[i] for i in r["sample"]["ids"] if i != eot)
        result[dtype] = r
        print(f"{dtype}: greedy {text!r} (smallest top-1 margin {r['greedy_min_margin']:.4f}); "
              f"sample seed {r['sample']['seed']}: {r['sample']['text']!r}")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write(json.dumps(result, indent=1) + "\n")
    print(f"wrote {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
