#!/usr/bin/env python3
"""Writes the GGUF test fixtures in test/fixtures/gguf/ with llama.cpp's own `gguf` package.

Genuine files for the GGUF reader's tests (test/unit/gguf.test.ts, test/integration/gguf.test.ts):
F32, F16, BF16, Q8_0, Q4_0 and Q4_K tensors, metadata of every value type (nested arrays too), a
small tokenizer vocabulary and a chat template, a non-default general.alignment, a big-endian file
(which the reader refuses), and a larger file whose header is a small part of it. Next to them,
expected.json says what `gguf.GGUFReader` reads from each: metadata, tensor names, shapes, types,
offsets, byte sizes, the sha256 of every tensor's bytes, and the values of the small files' tensors
(dequantized for the quantized types, for the dequantizing to come).

Run it from the repository root in the venv scripts/setup.sh makes:
    .venv-fixtures/bin/python scripts/gguf-fixtures.py
Its output is deterministic for one version of `gguf` and numpy; the files are committed so the
tests need no Python.
"""

import hashlib
import json
import os
import subprocess
import sys
from importlib.metadata import version

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from gguf import GGUFReader, GGUFValueType, GGUFWriter

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "gguf")

CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}</s>\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def vocabulary(size):
    """A llama-style vocabulary: special tokens, the 256 byte tokens are left out, pieces, unicode."""
    special = ["<unk>", "<s>", "</s>"]
    pieces = ["<0x0A>", "▁", "▁the", "▁hello", "▁world", "é", "ñ", "日本", "🙂", "\t", "a b"]
    tokens = special + pieces
    i = 0
    while len(tokens) < size:
        tokens.append(f"▁tok{i}")
        i += 1
    return tokens[:size]


def rng_values(seed, shape):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * 0.5).astype(np.float32)


def q4_k_blocks(seed, rows, row_elements):
    """Q4_K data built block by block (gguf-py cannot quantize to Q4_K): per 256 values an f16
    super-block scale and min, 12 bytes of 6-bit scales and mins, and 128 bytes of 4-bit quants."""
    rng = np.random.default_rng(seed)
    blocks = rows * row_elements // 256
    out = np.zeros((blocks, 144), dtype=np.uint8)
    d = rng.uniform(0.001, 0.01, blocks).astype(np.float16)
    dmin = rng.uniform(0.001, 0.01, blocks).astype(np.float16)
    out[:, 0:2] = d.view(np.uint8).reshape(blocks, 2)
    out[:, 2:4] = dmin.view(np.uint8).reshape(blocks, 2)
    out[:, 4:16] = rng.integers(0, 256, (blocks, 12), dtype=np.uint8)
    out[:, 16:144] = rng.integers(0, 256, (blocks, 128), dtype=np.uint8)
    return out.reshape(rows, row_elements // 256 * 144)


def add_quantized(writer, name, values, qtype):
    writer.add_tensor(name, gguf.quants.quantize(values, qtype), raw_dtype=qtype)


def write(path, build, endianess=gguf.GGUFEndian.LITTLE):
    writer = GGUFWriter(path, "llama", endianess=endianess)
    build(writer)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def add_tokenizer(writer, size):
    tokens = vocabulary(size)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([-float(i) for i in range(len(tokens))])
    writer.add_token_types([3 if i < 3 else 1 for i in range(len(tokens))])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_chat_template(CHAT_TEMPLATE)


def tiny(writer):
    writer.add_name("tiny-llama")
    writer.add_context_length(2048)
    writer.add_embedding_length(64)
    writer.add_block_count(1)
    writer.add_head_count(4)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    add_tokenizer(writer, 32)
    # One key of every value type, arrays of several, and a nested array.
    writer.add_uint8("test.u8", 200)
    writer.add_int8("test.i8", -100)
    writer.add_uint16("test.u16", 60000)
    writer.add_int16("test.i16", -30000)
    writer.add_uint32("test.u32", 4000000000)
    writer.add_int32("test.i32", -2000000000)
    writer.add_float32("test.f32", 0.25)
    writer.add_bool("test.bool", True)
    writer.add_string("test.string", "héllo, wörld")
    writer.add_uint64("test.u64", 2**63 + 5)
    writer.add_int64("test.i64", -(2**62))
    writer.add_float64("test.f64", 1e-300)
    writer.add_array("test.strings", ["a", "bc", "", "日本"])
    writer.add_array("test.ints", [1, -2, 3])
    writer.add_array("test.floats", [0.5, -1.5])
    writer.add_array("test.nested", [[1, 2], [3]])

    writer.add_tensor("token_embd.weight", rng_values(1, (32, 64)).astype(np.float16))
    writer.add_tensor("output_norm.weight", rng_values(2, (64,)))
    add_quantized(writer, "blk.0.attn_q.weight", rng_values(3, (8, 64)), Q.Q8_0)
    add_quantized(writer, "blk.0.attn_k.weight", rng_values(4, (8, 64)), Q.Q4_0)
    writer.add_tensor("blk.0.ffn_up.weight", q4_k_blocks(5, 4, 256), raw_dtype=Q.Q4_K)
    add_quantized(writer, "blk.0.ffn_norm.weight", rng_values(6, (64,)), Q.BF16)
    writer.add_tensor("blk.0.rope.weight", rng_values(7, (2, 3, 4)))


def aligned(writer):
    writer.add_custom_alignment(64)
    writer.add_context_length(128)
    writer.add_tensor("a", rng_values(10, (5,)))
    writer.add_tensor("b", rng_values(11, (3, 7)).astype(np.float16))
    add_quantized(writer, "c", rng_values(12, (2, 32)), Q.Q8_0)
    writer.add_tensor("d", rng_values(13, (3,)))


def big_endian(writer):
    writer.add_context_length(128)
    writer.add_tensor("a", rng_values(20, (4,)))


def large(writer):
    writer.add_context_length(4096)
    add_tokenizer(writer, 2000)
    # A tiled row, so that git stores the 256 KiB compactly.
    row = rng_values(30, (1024,)).astype(np.float16)
    writer.add_tensor("token_embd.weight", np.tile(row, (128, 1)))
    writer.add_tensor("output_norm.weight", rng_values(31, (1024,)))


VALUE_TYPE = {
    GGUFValueType.UINT8: "u8",
    GGUFValueType.INT8: "i8",
    GGUFValueType.UINT16: "u16",
    GGUFValueType.INT16: "i16",
    GGUFValueType.UINT32: "u32",
    GGUFValueType.INT32: "i32",
    GGUFValueType.FLOAT32: "f32",
    GGUFValueType.BOOL: "bool",
    GGUFValueType.STRING: "string",
    GGUFValueType.ARRAY: "array",
    GGUFValueType.UINT64: "u64",
    GGUFValueType.INT64: "i64",
    GGUFValueType.FLOAT64: "f64",
}


def jsonable(value, types):
    """A metadata value as JSON; 64-bit integers as strings (JSON numbers lose them)."""
    if isinstance(value, list):
        return [jsonable(v, types[1:]) for v in value]
    if types and types[0] in (GGUFValueType.UINT64, GGUFValueType.INT64):
        return str(int(value))
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    return value


# GGUFReader's ReaderField.contents() flattens arrays of arrays ([[1, 2], [3]] reads as [1, 2, 3]):
# for those the sidecar holds what was written.
NESTED = {"test.nested": [[1, 2], [3]]}
# Arrays longer than this are given by their length and first items (the large file's vocabulary).
LONG = 256


def expected(path, values=True):
    reader = GGUFReader(path)
    metadata = {}
    for name, field in reader.fields.items():
        if name.startswith("GGUF."):
            continue
        types = field.types
        entry = {"type": VALUE_TYPE[types[0]]}
        if types[0] == GGUFValueType.ARRAY:
            entry["itemType"] = VALUE_TYPE[types[1]]
            value = NESTED[name] if types[1] == GGUFValueType.ARRAY else jsonable(field.contents(), types[1:])
            entry["length"] = len(value)
            if len(value) > LONG:
                entry["head"] = value[:8]
            else:
                entry["value"] = value
        else:
            entry["value"] = jsonable(field.contents(), types)
        metadata[name] = entry
    tensors = []
    for t in reader.tensors:
        raw = bytes(np.asarray(t.data).tobytes())
        entry = {
            "name": t.name,
            "type": t.tensor_type.name,
            "ne": [int(d) for d in t.shape],
            "offset": int(t.data_offset),
            "bytes": int(t.n_bytes),
            "sha256": hashlib.sha256(raw).hexdigest(),
        }
        assert len(raw) == t.n_bytes, (t.name, len(raw), t.n_bytes)
        if values:
            floats = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type)
            entry["values"] = [float(v) for v in np.asarray(floats, dtype=np.float32).reshape(-1)]
        tensors.append(entry)
    return {
        "version": int(reader.fields["GGUF.version"].contents()),
        "alignment": int(reader.alignment),
        "dataOffset": int(reader.data_offset),
        "size": os.path.getsize(path),
        "metadata": metadata,
        "tensors": tensors,
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    files = {"tiny-llama.gguf": tiny, "aligned.gguf": aligned, "large.gguf": large}
    result = {"generator": f"gguf {version('gguf')}, numpy {np.__version__}", "files": {}}
    for name, build in files.items():
        path = os.path.join(OUT, name)
        write(path, build)
        # The large file's values are checked by sha256 alone.
        result["files"][name] = expected(path, values=name != "large.gguf")
    write(os.path.join(OUT, "big-endian.gguf"), big_endian, gguf.GGUFEndian.BIG)
    sidecar = os.path.join(OUT, "expected.json")
    with open(sidecar, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2, ensure_ascii=False)
        f.write("\n")
    # Formatted as the repository formats JSON (npm run lint checks it).
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    subprocess.run(["npx", "biome", "format", "--write", sidecar], cwd=root, check=True, stdout=subprocess.DEVNULL)
    for name in sorted(os.listdir(OUT)):
        print(f"{name}: {os.path.getsize(os.path.join(OUT, name))} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
