#!/usr/bin/env python3
"""Writes test/fixtures/tiny-bert: a tiny BERT-style feature-extraction model for the runtime adapters.

A BERT encoder written in plain torch (embeddings, 2 layers of self-attention and a GELU MLP, post-norm
as in BERT), with seeded random weights, exported with torch.onnx.export (opset 14, dynamic batch and
sequence axes), a WordPiece tokenizer built with `tokenizers`, and the folders transformers.js reads:

  model/     config.json (model_type "bert"), tokenizer.json, tokenizer_config.json, onnx/model.onnx
  external/  the same model with its weights as ONNX external data: onnx/model.onnx (graph only) and
             onnx/model.onnx_data; config.json says so (transformers.js_config.use_external_data_format)
  reference.json  torch's outputs for a few sentences: token ids, last_hidden_state, mean-pooled
  gather/    gather.onnx: Gather(weights, indices) over a float32 initializer of GATHER_ELEMENTS
             (64 MiB) kept as external data in gather.onnx_data, which is NOT committed: the tests write
             it (value i is (i % 4096) * 0.25 - 512, exact in float32) to measure memory on a large file

Python `transformers` is not used (the local index has none that runs with Debian's torch 1.13).
Run it in a venv that sees Debian's torch, with `tokenizers`, `onnx` and numpy<2 from pip
(scripts/setup.sh makes one: .venv-torch-fixtures):

  /usr/bin/python3 -m venv --system-site-packages .venv-torch-fixtures
  .venv-torch-fixtures/bin/pip install tokenizers onnx "numpy<2"
  .venv-torch-fixtures/bin/python scripts/tiny-bert.py test/fixtures/tiny-bert
"""

import json
import math
import os
import shutil
import subprocess
import sys

import onnx
import torch
from onnx.external_data_helper import convert_model_to_external_data
from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

HIDDEN = 32
HEADS = 2
LAYERS = 2
INTERMEDIATE = 64
MAX_POSITIONS = 64
EPS = 1e-12
SENTENCES = [
    "The model is pulled from an OCI registry.",
    "Every byte is checked against its digest!",
    "hello world",
    "Blobs stream into OPFS quickly.",
]

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = (
    "the a an is are from to of in on and every byte model models pulled registry oci checked "
    "against its digest hello world browser store layer blob tiny bert"
).split()
CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789")
PUNCT = list(".,!?;:'\"-()")


def vocabulary():
    tokens = SPECIAL + PUNCT + CHARS + ["##" + c for c in CHARS] + WORDS
    seen = []
    for t in tokens:
        if t not in seen:
            seen.append(t)
    return {t: i for i, t in enumerate(seen)}


def tokenizer(vocab):
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]", continuing_subword_prefix="##", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.add_special_tokens(SPECIAL)
    return tok


class Layer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.query = torch.nn.Linear(HIDDEN, HIDDEN)
        self.key = torch.nn.Linear(HIDDEN, HIDDEN)
        self.value = torch.nn.Linear(HIDDEN, HIDDEN)
        self.attention_output = torch.nn.Linear(HIDDEN, HIDDEN)
        self.attention_norm = torch.nn.LayerNorm(HIDDEN, eps=EPS)
        self.intermediate = torch.nn.Linear(HIDDEN, INTERMEDIATE)
        self.output = torch.nn.Linear(INTERMEDIATE, HIDDEN)
        self.output_norm = torch.nn.LayerNorm(HIDDEN, eps=EPS)

    def forward(self, x, mask_bias):
        b, s, _ = x.shape
        head = HIDDEN // HEADS

        def split(t):
            return t.view(b, s, HEADS, head).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(head) + mask_bias
        context = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2).reshape(b, s, HIDDEN)
        x = self.attention_norm(x + self.attention_output(context))
        h = torch.nn.functional.gelu(self.intermediate(x))
        return self.output_norm(x + self.output(h))


class TinyBert(torch.nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.word_embeddings = torch.nn.Embedding(vocab_size, HIDDEN)
        self.position_embeddings = torch.nn.Embedding(MAX_POSITIONS, HIDDEN)
        self.token_type_embeddings = torch.nn.Embedding(2, HIDDEN)
        self.embeddings_norm = torch.nn.LayerNorm(HIDDEN, eps=EPS)
        self.layers = torch.nn.ModuleList([Layer() for _ in range(LAYERS)])

    def forward(self, input_ids, attention_mask, token_type_ids):
        positions = torch.arange(input_ids.shape[1], dtype=torch.long).unsqueeze(0)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions)
        x = self.embeddings_norm(x + self.token_type_embeddings(token_type_ids))
        mask_bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
        for layer in self.layers:
            x = layer(x, mask_bias)
        return x


GATHER_ELEMENTS = 16 * 1024 * 1024


def gather_model(folder):
    """A graph whose one initializer lives in gather.onnx_data, which this script does not write."""
    from onnx import TensorProto, helper

    weights = TensorProto()
    weights.name = "weights"
    weights.data_type = TensorProto.FLOAT
    weights.dims.append(GATHER_ELEMENTS)
    weights.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "gather.onnx_data"), ("offset", "0"), ("length", str(GATHER_ELEMENTS * 4))):
        entry = weights.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("Gather", ["weights", "indices"], ["values"], axis=0)],
        "gather",
        [helper.make_tensor_value_info("indices", TensorProto.INT64, ["n"])],
        [helper.make_tensor_value_info("values", TensorProto.FLOAT, ["n"])],
        initializer=[weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], producer_name="tiny-bert.py")
    model.ir_version = 8
    os.makedirs(folder)
    with open(os.path.join(folder, "gather.onnx"), "wb") as f:
        f.write(model.SerializeToString())
    write_json(os.path.join(folder, "gather.json"), {"elements": GATHER_ELEMENTS, "value": "(i % 4096) * 0.25 - 512"})


def write_json(path, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")


def main(out):
    torch.manual_seed(20261204)
    vocab = vocabulary()
    tok = tokenizer(vocab)
    model = TinyBert(len(vocab)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.5)

    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": HIDDEN,
        "num_attention_heads": HEADS,
        "num_hidden_layers": LAYERS,
        "intermediate_size": INTERMEDIATE,
        "hidden_act": "gelu",
        "max_position_embeddings": MAX_POSITIONS,
        "type_vocab_size": 2,
        "vocab_size": len(vocab),
        "layer_norm_eps": EPS,
        "pad_token_id": vocab["[PAD]"],
    }
    tokenizer_config = {
        "tokenizer_class": "BertTokenizer",
        "do_lower_case": True,
        "model_max_length": MAX_POSITIONS,
        "cls_token": "[CLS]",
        "sep_token": "[SEP]",
        "pad_token": "[PAD]",
        "unk_token": "[UNK]",
        "mask_token": "[MASK]",
    }

    if os.path.isdir(out):
        shutil.rmtree(out)
    plain = os.path.join(out, "model")
    external = os.path.join(out, "external")
    for folder, cfg in ((plain, config), (external, {**config, "transformers.js_config": {"use_external_data_format": True}})):
        os.makedirs(os.path.join(folder, "onnx"))
        write_json(os.path.join(folder, "config.json"), cfg)
        write_json(os.path.join(folder, "tokenizer_config.json"), tokenizer_config)
        tok.save(os.path.join(folder, "tokenizer.json"))

    sample = tok.encode(SENTENCES[0])
    ids = torch.tensor([sample.ids])
    args = (ids, torch.ones_like(ids), torch.zeros_like(ids))
    onnx_path = os.path.join(plain, "onnx", "model.onnx")
    torch.onnx.export(
        model,
        args,
        onnx_path,
        opset_version=14,
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["last_hidden_state"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "sequence"},
            "token_type_ids": {0: "batch", 1: "sequence"},
            "last_hidden_state": {0: "batch", 1: "sequence"},
        },
        do_constant_folding=True,
    )
    graph = onnx.load(onnx_path)
    onnx.checker.check_model(graph)
    convert_model_to_external_data(graph, all_tensors_to_one_file=True, location="model.onnx_data", size_threshold=0)
    onnx.save_model(graph, os.path.join(external, "onnx", "model.onnx"))
    os.chmod(os.path.join(external, "onnx", "model.onnx_data"), 0o644)

    reference = {"hidden_size": HIDDEN, "sentences": []}
    with torch.no_grad():
        for sentence in SENTENCES:
            enc = tok.encode(sentence)
            ids = torch.tensor([enc.ids])
            hidden = model(ids, torch.ones_like(ids), torch.zeros_like(ids))[0]
            reference["sentences"].append(
                {
                    "text": sentence,
                    "input_ids": enc.ids,
                    "tokens": enc.tokens,
                    "last_hidden_state": [[float(v) for v in row] for row in hidden],
                    "mean_pooled": [float(v) for v in hidden.mean(dim=0)],
                }
            )
    write_json(os.path.join(out, "reference.json"), reference)
    gather_model(os.path.join(out, "gather"))
    # The JSON files in Biome's layout, so that `npm run lint` accepts them as written.
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    biome = os.path.join(root, "node_modules", ".bin", "biome")
    if os.path.exists(biome):
        subprocess.run([biome, "format", "--write", os.path.abspath(out)], cwd=root, check=True, capture_output=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "tiny-bert"))
