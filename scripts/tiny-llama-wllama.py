#!/usr/bin/env python3
"""Writes a tiny llama-architecture GGUF that llama.cpp (inside wllama) really runs, for the wllama
adapter's tests (test/browser/wllama.browser.test.ts), with llama.cpp's own `gguf` package.

The model: F32, 2 layers, n_embd 32, 2 heads, feed-forward 64, context 512, seeded random weights,
and a small llama (SentencePiece) vocabulary with what llama.cpp's tokenizer needs to use it:
`<unk>`, `<s>`, `</s>`, the 256 byte tokens `<0x00>`…`<0xFF>` (byte fallback), the single
characters, and every prefix of each word (`▁h`, `▁he`, `▁hel`…), scored so that longer pieces win,
or words would fall back to bytes. Written twice:

    test/fixtures/wllama/tiny-llama.gguf                    one file
    test/fixtures/wllama/tiny-llama-split-00001-of-00002.gguf  the same model split by tensors, as
    test/fixtures/wllama/tiny-llama-split-00002-of-00002.gguf  llama.cpp's gguf-split names it

Run it from the repository root in the venv scripts/setup.sh makes:
    .venv-fixtures/bin/python scripts/tiny-llama-wllama.py
With `--embd N --ff N --words N --out PATH` it writes a larger model of the same kind elsewhere
(the tests' heap measurement). Its output is deterministic for one version of `gguf` and numpy; the
files are committed so the tests need no Python.
"""

import argparse
import os
from importlib.metadata import version

import numpy as np
import gguf
from gguf import GGUFWriter

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "wllama")

TEXT = (
    "once upon a time there was a tiny model that lived in a browser . it read its weights from "
    "a registry , checked every byte , and then it told the same story again and again : hello "
    "world , the quick brown fox jumps over the lazy dog"
)

# The constant channel's value in every embedding (the others are standard normal).
CONSTANT = 4.0

# llama.cpp's llama_token_type
NORMAL, UNKNOWN, CONTROL, BYTE = 1, 2, 3, 6


def vocabulary(extra_words):
    """Special tokens, the 256 byte tokens, single characters, and every prefix of every word."""
    tokens = [("<unk>", UNKNOWN), ("<s>", CONTROL), ("</s>", CONTROL)]
    tokens += [(f"<0x{b:02X}>", BYTE) for b in range(256)]
    words = sorted(set(TEXT.split())) + [f"w{i}" for i in range(extra_words)]
    pieces = {"▁"}
    for word in words:
        for ch in word:
            pieces.add(ch)
        marked = "▁" + word
        for end in range(2, len(marked) + 1):
            pieces.add(marked[:end])
        for end in range(2, len(word) + 1):
            pieces.add(word[:end])
    # Longer pieces score higher, so SentencePiece's merges build whole words.
    ordered = sorted(pieces, key=lambda p: (len(p), p))
    tokens += [(p, NORMAL) for p in ordered]
    scores = [0.0] * (3 + 256) + [float(len(p)) - i * 1e-4 for i, p in enumerate(ordered)]
    return [t for t, _ in tokens], scores, [k for _, k in tokens]


def build(path, n_embd, n_ff, n_layer, n_head, extra_words, split_max_tensors=0, seed=18):
    tokens, scores, types = vocabulary(extra_words)
    n_vocab = len(tokens)
    rng = np.random.default_rng(seed)

    def weight(*shape, scale):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    writer = GGUFWriter(path, "llama", split_max_tensors=split_max_tensors)
    writer.add_name("tiny-llama-wllama")
    writer.add_context_length(512)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(n_vocab)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)

    # numpy shapes are GGUF's ne reversed: (rows = outputs, columns = inputs).
    # Dimension 0 of the residual stream is a constant channel: every embedding has CONSTANT there
    # and no layer writes to it (row 0 of attn_output and ffn_down is zero), so after the final norm
    # it is always positive. The output rows of the byte, control and unknown tokens read only that
    # channel, negatively, and every word piece's reads it positively: greedy decoding can only pick
    # word pieces, whatever the random weights, so the text is always valid UTF-8 (a lone byte token
    # is not, and llama.cpp's server fails to encode its JSON answer) and never ends early.
    embeddings = weight(n_vocab, n_embd, scale=1.0)
    embeddings[:, 0] = CONSTANT
    writer.add_tensor("token_embd.weight", embeddings)
    for i in range(n_layer):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            w = weight(n_embd, n_embd, scale=n_embd**-0.5)
            if name == "attn_output":
                w[0, :] = 0
            writer.add_tensor(f"blk.{i}.{name}.weight", w)
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", weight(n_ff, n_embd, scale=n_embd**-0.5))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weight(n_ff, n_embd, scale=n_embd**-0.5))
        down = weight(n_embd, n_ff, scale=n_ff**-0.5)
        down[0, :] = 0
        writer.add_tensor(f"blk.{i}.ffn_down.weight", down)
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    output = weight(n_vocab, n_embd, scale=2 * n_embd**-0.5)
    pieces = np.array([t == NORMAL for t in types])
    output[~pieces, :] = 0
    output[:, 0] = np.where(pieces, 1.0, -1.0)
    writer.add_tensor("output.weight", output)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return n_vocab


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="write one larger model here instead of the fixtures")
    parser.add_argument("--embd", type=int, default=32)
    parser.add_argument("--ff", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--words", type=int, default=0, help="extra words in the vocabulary")
    args = parser.parse_args()
    if args.out:
        build(args.out, args.embd, args.ff, args.layers, 2, args.words)
        print(f"{args.out}: {os.path.getsize(args.out)} bytes")
        return
    os.makedirs(OUT, exist_ok=True)
    single = os.path.join(OUT, "tiny-llama.gguf")
    n_vocab = build(single, 32, 64, 2, 2, 0)
    # 21 tensors, 11 in the first shard: `gguf` names the shards tiny-llama-split-0000i-of-00002.gguf.
    build(os.path.join(OUT, "tiny-llama-split.gguf"), 32, 64, 2, 2, 0, split_max_tensors=11)
    for name in sorted(os.listdir(OUT)):
        if name.endswith(".gguf"):
            print(f"{name}: {os.path.getsize(os.path.join(OUT, name))} bytes")
    print(f"vocabulary {n_vocab} tokens; gguf {version('gguf')}, numpy {np.__version__}")


if __name__ == "__main__":
    main()
