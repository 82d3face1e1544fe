import { describe, expect, it } from "vitest";
import { modelInfo } from "../../src/internals.js";

describe("modelInfo", () => {
  it("reads Docker model-spec configs", () => {
    const blob = {
      config: {
        format: "gguf",
        quantization: "Q4_K_M",
        parameters: "360M",
        architecture: "llama",
        context_size: 8192,
      },
    };
    expect(modelInfo("docker-v0.1", blob)).toEqual({
      format: "gguf",
      quantization: "Q4_K_M",
      parameters: "360M",
      architecture: "llama",
      contextSize: 8192,
    });
  });

  it("reads ModelPack configs", () => {
    const blob = {
      descriptor: { name: "x" },
      config: { architecture: "transformer", format: "safetensors", paramSize: "8b", precision: "bfloat16" },
    };
    expect(modelInfo("modelpack", blob)).toEqual({
      architecture: "transformer",
      format: "safetensors",
      parameters: "8b",
      quantization: "bfloat16",
      precision: "bfloat16",
    });
    const quantized = { config: { format: "safetensors", precision: "float16", quantization: "awq" } };
    expect(modelInfo("modelpack", quantized)).toEqual({
      format: "safetensors",
      quantization: "awq",
      precision: "float16",
    });
  });

  it("reads Model Runner's size and gguf map, numbers as text (docker/model-runner types/config.go)", () => {
    const blob = {
      config: {
        format: "gguf",
        size: "1.2 GB",
        gguf: {
          "general.architecture": "qwen3",
          "qwen3.block_count": 28,
          "general.flag": true,
          nested: { no: 1 },
        },
      },
    };
    expect(modelInfo("docker-v0.2", blob)).toEqual({
      format: "gguf",
      architecture: "qwen3",
      size: "1.2 GB",
      gguf: { "general.architecture": "qwen3", "qwen3.block_count": "28", "general.flag": "true" },
    });
  });

  it.each([
    [
      "GGUF's own keys",
      {
        format: "gguf",
        gguf: {
          "general.architecture": "gemma3",
          "general.size_label": "4B",
          "gemma3.context_length": "131072",
        },
      },
      { format: "gguf", architecture: "gemma3", parameters: "4B", contextSize: 131072 },
    ],
    [
      "the spec's gguf keys (docker/model-spec config.md)",
      { format: "gguf", gguf: { architecture: "llama", parameter_count: "1.10 B", quantization: "Q4_0" } },
      { format: "gguf", architecture: "llama", parameters: "1.10 B", quantization: "Q4_0" },
    ],
    [
      "the spec's safetensors keys",
      { format: "safetensors", safetensors: { architecture: "qwen2", parameter_count: "3.09 B" } },
      { format: "safetensors", architecture: "qwen2", parameters: "3.09 B" },
    ],
    [
      "the config's own keys first",
      {
        architecture: "llama",
        parameters: "8B",
        context_size: 4096,
        gguf: { "general.architecture": "other", "other.context_length": "9", parameter_count: "9" },
      },
      { architecture: "llama", parameters: "8B", contextSize: 4096 },
    ],
  ])("falls back on %s where the Docker config states nothing itself", (_, config, expected) => {
    expect(modelInfo("docker-v0.1", { config })).toMatchObject(expected);
  });

  it("drops a context size that is not a positive whole number", () => {
    for (const context_size of [0, -1, 1.5, "many", Number.NaN])
      expect(modelInfo("docker-v0.1", { config: { context_size } }).contextSize).toBeUndefined();
  });

  it("reads KitOps configs and leaves out what is not stated", () => {
    expect(modelInfo("kitops", { model: { name: "tiny", format: "onnx" } })).toEqual({ format: "onnx" });
    expect(modelInfo("unknown", "not an object")).toEqual({});
  });
});
