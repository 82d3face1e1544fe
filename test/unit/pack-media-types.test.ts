// packModel names each weight by what it is: Docker's own types for GGUF and safetensors, a plain
// model file for any other weight (ONNX, a PyTorch .bin), and the config's `format` after the weights.
import { describe, expect, it } from "vitest";
import { createMemoryStore, type PackFile, type PackFormat, packModel } from "../../src/index.js";
import { readJson } from "../../src/store/bytes.js";
import { writeSafetensors } from "../support/safetensors.js";

const file = (path: string, content: string | Uint8Array): PackFile => {
  const bytes = typeof content === "string" ? new TextEncoder().encode(content) : content;
  return {
    path,
    size: bytes.byteLength,
    stream: async (offset = 0, length = bytes.byteLength - offset) =>
      new Blob([bytes.slice(offset, offset + length)]).stream(),
  };
};

async function packed(format: PackFormat, files: PackFile[]) {
  const store = createMemoryStore();
  const { manifest } = await packModel(files, { format, store });
  const config = await readJson<{ config: { format: string } }>(store, manifest.config);
  const types = Object.fromEntries(
    manifest.layers.map((l) => [
      l.annotations?.["org.cncf.model.filepath"] ?? l.annotations?.["org.opencontainers.image.title"],
      l.mediaType,
    ]),
  );
  return { format: config.config.format, types };
}

describe("packModel: media types and format of weights that are neither GGUF nor safetensors", () => {
  it("packs an ONNX model as docker-v0.2 with the ONNX file as a plain model file, format onnx", async () => {
    const { format, types } = await packed("docker-v0.2", [
      file("config.json", '{"model_type":"bert"}'),
      file("onnx/model.onnx", "not really onnx"),
      file("tokenizer.json", "{}"),
    ]);
    expect(format).toBe("onnx");
    expect(types["onnx/model.onnx"]).toBe("application/vnd.docker.ai.model.file");
    expect(types["config.json"]).toBe("application/vnd.docker.ai.model.file");
  });

  it("still types safetensors as Docker's safetensors, and says safetensors beside an ONNX export", async () => {
    const { format, types } = await packed("docker-v0.1", [
      file("model.safetensors", writeSafetensors([{ name: "w", dtype: "F32", shape: [2] }])),
      file("model.onnx", "y"),
    ]);
    expect(format).toBe("safetensors");
    expect(types["model.safetensors"]).toBe("application/vnd.docker.ai.safetensors");
    expect(types["model.onnx"]).toBe("application/vnd.docker.ai.model.file");
  });
});
