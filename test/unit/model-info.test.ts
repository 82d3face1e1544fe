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
    });
  });

  it("reads KitOps configs and leaves out what is not stated", () => {
    expect(modelInfo("kitops", { model: { name: "tiny", format: "onnx" } })).toEqual({ format: "onnx" });
    expect(modelInfo("unknown", "not an object")).toEqual({});
  });
});
