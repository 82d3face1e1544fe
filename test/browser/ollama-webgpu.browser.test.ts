// Ollama's per-tensor layers (issue 17) uploaded to the GPU like any tensor file: each layer's file is
// one tensor, its name, dtype and shape from the media type (ollama/ollama
// server/internal/manifest/manifest.go), F16 and BF16 widened to F32 on the GPU.
import { afterAll, describe, expect, it } from "vitest";
import { createMemoryStore, Model, type ModelRecord, toFloat32, uploadToGPU } from "../../src/index.js";
import { readBack } from "../support/gpu.js";

const devices: GPUDevice[] = [];
afterAll(() => {
  for (const device of devices.splice(0)) device.destroy();
});

async function sha256(bytes: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return `sha256:${Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

const f32 = (values: number[]) => new Uint8Array(Float32Array.from(values).buffer);
// 1, -2, 0.5, 3 as f16 and as bf16 bits.
const f16 = new Uint8Array(Uint16Array.from([0x3c00, 0xc000, 0x3800, 0x4200]).buffer);
const bf16 = new Uint8Array(Uint16Array.from([0x3f80, 0xc000, 0x3f00, 0x4040]).buffer);
const TENSORS = [
  { name: "norm.weight", dtype: "F32", shape: [3], bytes: f32([1.5, -2.25, 4]) },
  { name: "embed.weight", dtype: "F16", shape: [2, 2], bytes: f16 },
  { name: "lm_head.weight", dtype: "BF16", shape: [4], bytes: bf16 },
] as const;

/** A pulled Ollama model of per-tensor layers, held in a memory store. */
async function ollamaModel(): Promise<Model> {
  const store = createMemoryStore();
  const files: ModelRecord["files"] = [];
  for (const t of TENSORS) {
    const digest = await sha256(t.bytes);
    const mediaType = `application/vnd.ollama.image.tensor; name=${t.name}; dtype=${t.dtype}; shape=${t.shape.join(",")}`;
    await store.push({ mediaType, digest, size: t.bytes.byteLength }, async () =>
      new Blob([t.bytes as Uint8Array<ArrayBuffer>]).stream(),
    );
    files.push({ path: `tensors/${t.name}`, digest, size: t.bytes.byteLength, mediaType, weight: true });
  }
  const config = new TextEncoder().encode("{}");
  const configDigest = await sha256(config);
  const record: ModelRecord = {
    reference: "registry.ollama.ai/library/tiny:v1",
    digest: configDigest,
    mediaType: "application/vnd.docker.distribution.manifest.v2+json",
    format: "ollama",
    config: { mediaType: "application/vnd.docker.container.image.v1+json", digest: configDigest, size: 2 },
    files,
    pending: [],
    pulledAt: new Date(0).toISOString(),
  };
  return new Model(store, record, {}, undefined);
}

describe("WebGPU upload of Ollama per-tensor layers (Chromium, SwiftShader)", () => {
  it("indexes each layer as one tensor and uploads it, F16 and BF16 widened exactly", async () => {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) throw new Error("no WebGPU adapter: is Chromium started with --enable-unsafe-webgpu?");
    const device = await adapter.requestDevice();
    devices.push(device);
    const model = await ollamaModel();
    expect(model.weights).toEqual(TENSORS.map((t) => `tensors/${t.name}`));
    const buffers = await uploadToGPU(device, model, { convert: true });
    expect([...buffers.keys()].sort()).toEqual(TENSORS.map((t) => t.name).sort());
    for (const t of TENSORS) {
      const count = t.shape.reduce((n: number, d: number) => n * d, 1);
      const got = Array.from(
        new Float32Array(await readBack(device, buffers.get(t.name) as GPUBuffer), 0, count),
      );
      expect(got, t.name).toEqual(Array.from(toFloat32(t.dtype, t.bytes)));
    }
    expect(Array.from(toFloat32("F16", f16))).toEqual([1, -2, 0.5, 3]);
    expect(Array.from(toFloat32("BF16", bf16))).toEqual([1, -2, 0.5, 3]);
  });
});
