// GGUF on WebGPU in Chromium (SwiftShader): quantized tensors uploaded as their raw blocks, and
// dequantized to f32 by the shaders of src/webgpu/dequantize.ts, checked against the values of
// llama.cpp's own `gguf` package (gguf.quants.dequantize, in test/fixtures/gguf/expected.json).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { commands } from "vitest/browser";
import {
  createMemoryStore,
  Model,
  type ModelRecord,
  requestModelDevice,
  uploadToGPU,
} from "../../src/index.js";
import { sha256 } from "../support/blobs.js";
import type { ExpectedGguf } from "../support/gguf.js";
import { maxError, readBack } from "../support/gpu.js";

/** A file of test/fixtures/gguf/, read by the Node side (vitest's browser `readFile` command). */
async function fixture(name: string): Promise<Uint8Array> {
  const text = atob(await commands.readFile(`test/fixtures/gguf/${name}`, "base64"));
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

/** A model whose one weight is `file` as `model.gguf`, held in a memory store (no registry). */
async function ggufModel(file: Uint8Array): Promise<Model> {
  const store = createMemoryStore();
  const digest = await sha256(file);
  await store.push({ mediaType: "application/octet-stream", digest, size: file.byteLength }, async () =>
    new Blob([file as Uint8Array<ArrayBuffer>]).stream(),
  );
  const config = new TextEncoder().encode("{}");
  const record: ModelRecord = {
    reference: "local.test/tiny-llama:gguf",
    digest: await sha256(new TextEncoder().encode(digest)),
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    format: "docker-v0.2",
    config: {
      mediaType: "application/vnd.docker.ai.model.config.v0.1+json",
      digest: await sha256(config),
      size: 2,
    },
    files: [
      {
        path: "model.gguf",
        digest,
        size: file.byteLength,
        mediaType: "application/vnd.docker.ai.gguf.v3",
        weight: true,
      },
    ],
    pending: [],
    pulledAt: new Date(0).toISOString(),
  };
  return new Model(store, record, {}, undefined);
}

const QUANTIZED = ["Q8_0", "Q4_0", "Q4_K"];
const align4 = (n: number) => Math.ceil(n / 4) * 4;

describe("GGUF on WebGPU in Chromium (SwiftShader)", () => {
  let device: GPUDevice;
  let file: Uint8Array;
  let model: Model;
  let expected: ExpectedGguf;

  beforeAll(async () => {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) throw new Error("no WebGPU adapter: is Chromium started with --enable-unsafe-webgpu?");
    device = await requestModelDevice(adapter);
    file = await fixture("tiny-llama.gguf");
    model = await ggufModel(file);
    const sidecar = JSON.parse(new TextDecoder().decode(await fixture("expected.json"))) as {
      files: Record<string, ExpectedGguf>;
    };
    expected = sidecar.files["tiny-llama.gguf"] as ExpectedGguf;
  });
  afterAll(() => device?.destroy());

  it("uploads every tensor as its file bytes by default: quantized ones as raw blocks padded to 4 bytes", async () => {
    const buffers = await uploadToGPU(device, model, {
      chunkSize: 64, // chunks that cross tensors and the alignment padding between them
      expected: expected.tensors.map((t) => t.name),
    });
    expect(expected.tensors.map((t) => t.type)).toEqual(
      expect.arrayContaining([...QUANTIZED, "F32", "F16", "BF16"]),
    );
    for (const t of expected.tensors) {
      const buffer = buffers.get(t.name) as GPUBuffer;
      expect(buffer.size, t.name).toBe(Math.max(4, align4(t.bytes)));
      const bytes = new Uint8Array(await readBack(device, buffer));
      expect(bytes.subarray(0, t.bytes), t.name).toEqual(file.subarray(t.offset, t.offset + t.bytes));
      expect(await sha256(bytes.subarray(0, t.bytes)), t.name).toBe(`sha256:${t.sha256}`);
      expect(Array.from(bytes.subarray(t.bytes)), t.name).toEqual(new Array(buffer.size - t.bytes).fill(0));
    }
    for (const buffer of buffers.values()) buffer.destroy();
  });

  it("dequantizes Q8_0, Q4_0 and Q4_K to f32 on the GPU as gguf.quants.dequantize does; F16/BF16 widened, F32 unchanged", async () => {
    const buffers = await uploadToGPU(device, model, { dequantize: true, convert: true });
    const errors: Record<string, number> = {};
    for (const t of expected.tensors) {
      const want = t.values as number[];
      expect(want.length, t.name).toBe(t.ne.reduce((n, d) => n * d, 1));
      const buffer = buffers.get(t.name) as GPUBuffer;
      expect(buffer.size, t.name).toBe(want.length * 4);
      const got = Array.from(new Float32Array(await readBack(device, buffer)));
      if (!QUANTIZED.includes(t.type)) {
        expect(got, t.name).toEqual(want); // F16/BF16 → f32 and F32 are exact
        continue;
      }
      errors[t.type] = maxError(`${t.name} (${t.type})`, got, want);
      // Not all zero: the blocks were read, not skipped.
      expect(
        got.some((v) => v !== 0),
        t.name,
      ).toBe(true);
    }
    console.log("GPU dequantization, max |error| against gguf-py:", JSON.stringify(errors));
    expect(Object.keys(errors).sort()).toEqual([...QUANTIZED].sort());
    for (const buffer of buffers.values()) buffer.destroy();
  });

  it("dequantizes only the tensors the function picks; the others stay raw blocks", async () => {
    const buffers = await uploadToGPU(device, model, {
      filter: (t) => t.dtype === "Q4_K" || t.dtype === "Q8_0",
      dequantize: (t) => t.dtype === "Q4_K",
    });
    const q4k = expected.tensors.find((t) => t.type === "Q4_K") as ExpectedGguf["tensors"][number];
    const q8 = expected.tensors.find((t) => t.type === "Q8_0") as ExpectedGguf["tensors"][number];
    expect([...buffers.keys()].sort()).toEqual([q4k.name, q8.name].sort());
    const got = new Float32Array(await readBack(device, buffers.get(q4k.name) as GPUBuffer));
    maxError(q4k.name, got, q4k.values as number[]);
    const raw = new Uint8Array(await readBack(device, buffers.get(q8.name) as GPUBuffer));
    expect(raw.subarray(0, q8.bytes)).toEqual(file.subarray(q8.offset, q8.offset + q8.bytes));
    for (const buffer of buffers.values()) buffer.destroy();
  });

  it("gives a converted buffer the STORAGE usage its shader writes with, whatever usage the caller asked for", async () => {
    const q4k = expected.tensors.find((t) => t.type === "Q4_K") as ExpectedGguf["tensors"][number];
    const buffers = await uploadToGPU(device, model, {
      filter: (t) => t.name === q4k.name,
      dequantize: true,
      usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    const buffer = buffers.get(q4k.name) as GPUBuffer;
    expect(buffer.usage & GPUBufferUsage.COPY_SRC).not.toBe(0);
    maxError(q4k.name, new Float32Array(await readBack(device, buffer)), q4k.values as number[]);
    buffer.destroy();
  });

  it("refuses to dequantize another quantized type with INVALID_ARGUMENT before uploading; raw it uploads", async () => {
    // The Q4_0 tensor retyped as IQ4_NL (ggml type 20): the same 18-byte blocks of 32, so the header
    // stays valid, but a type the GPU does not dequantize here.
    const name = new TextEncoder().encode("blk.0.attn_k.weight");
    let at = -1;
    for (let i = 0; i + name.length <= file.length && at < 0; i++) {
      if (name.every((b, j) => file[i + j] === b)) at = i + name.length;
    }
    const view = new DataView(file.buffer, file.byteOffset);
    const typeAt = at + 4 + 8 * view.getUint32(at, true); // after n_dims and the dims
    expect(view.getUint32(typeAt, true)).toBe(2); // Q4_0
    const retyped = file.slice();
    new DataView(retyped.buffer).setUint32(typeAt, 20, true);
    const iq4 = await ggufModel(retyped);
    expect((await iq4.tensorIndex()).get("blk.0.attn_k.weight")?.dtype).toBe("IQ4_NL");

    let errors = 0;
    device.addEventListener("uncapturederror", () => errors++);
    await expect(uploadToGPU(device, iq4, { dequantize: true })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      message: expect.stringMatching(
        /^Cannot dequantize tensor "blk\.0\.attn_k\.weight": IQ4_NL is not supported; upload it raw/,
      ),
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(errors).toBe(0);

    // Raw, or with the function leaving IQ4_NL out, it uploads.
    const buffers = await uploadToGPU(device, iq4, { dequantize: (t) => t.dtype !== "IQ4_NL" });
    const t = expected.tensors.find(
      (e) => e.name === "blk.0.attn_k.weight",
    ) as ExpectedGguf["tensors"][number];
    const raw = new Uint8Array(await readBack(device, buffers.get(t.name) as GPUBuffer));
    expect(raw.subarray(0, t.bytes)).toEqual(file.subarray(t.offset, t.offset + t.bytes));
    for (const buffer of buffers.values()) buffer.destroy();
  });
});
