import { describe, expect, it } from "vitest";
import { isTensorFile, isWeightPath, tensorFileKind } from "../../src/tensors/files.js";

describe("one predicate says what a tensor file is", () => {
  it.each([
    ["model.safetensors", "safetensors", true],
    ["shards/model-00001-of-00002.safetensors", "safetensors", true],
    ["MODEL.SafeTensors", "safetensors", true],
    ["pytorch_model.bin", "torch", true],
    ["weights.pt", "torch", true],
    ["weights.PTH", "torch", true],
    ["arrays.npz", "npz", true],
    ["ARRAYS.NPZ", "npz", true],
    ["model.gguf", "gguf", true],
    ["MODEL.GGUF", "gguf", true],
    // Weights stored and pulled, but not read tensor by tensor.
    ["model.ckpt", undefined, true],
    ["model.onnx", undefined, true],
    ["tf_model.h5", undefined, true],
    ["flax_model.msgpack", undefined, true],
    // Not weights: indexes, configs, names that only contain an extension.
    ["model.safetensors.index.json", undefined, false],
    ["pytorch_model.bin.index.json", undefined, false],
    ["config.json", undefined, false],
    ["tokenizer.model", undefined, false],
    ["arrays.npy", undefined, false],
    ["model.safetensors.bak", undefined, false],
    ["safetensors", undefined, false],
    ["bin/readme.md", undefined, false],
    ["model.binary", undefined, false],
    ["model.ptx", undefined, false],
  ] as const)("%s: kind %s, weight %s", (path, kind, weight) => {
    expect(tensorFileKind(path)).toBe(kind);
    expect(isTensorFile(path)).toBe(kind !== undefined);
    expect(isWeightPath(path)).toBe(weight);
  });
});
