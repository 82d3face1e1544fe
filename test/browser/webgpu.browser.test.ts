import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  createMemoryStore,
  Model,
  type ModelRecord,
  pullModel,
  requestModelDevice,
  toFloat32,
  uploadToGPU,
} from "../../src/index.js";
import { blobOf } from "../support/blobs.js";
import { readBack } from "../support/gpu.js";
import { writeSafetensors } from "../support/safetensors.js";
import { COLS, ROWS, tensorSpecs, values } from "../support/tensor-model.js";

const bed = inject("bed");

/** Every device a test asks for, destroyed when the file is done (SwiftShader devices hold memory). */
const devices: GPUDevice[] = [];
async function newDevice(adapter: GPUAdapter, model: boolean, descriptor?: GPUDeviceDescriptor) {
  const device = model
    ? await requestModelDevice(adapter, descriptor)
    : await adapter.requestDevice(descriptor);
  devices.push(device);
  return device;
}
afterAll(() => {
  for (const device of devices.splice(0)) device.destroy();
});

async function getAdapter(): Promise<GPUAdapter> {
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) throw new Error("no WebGPU adapter: is Chromium started with --enable-unsafe-webgpu?");
  return adapter;
}

/** A model of one safetensors file held in a memory store, opened without a registry. */
async function localModel(file: Uint8Array): Promise<Model> {
  const store = createMemoryStore();
  const { descriptor } = await blobOf(0);
  const digest = `sha256:${Array.from(
    new Uint8Array(await crypto.subtle.digest("SHA-256", file as Uint8Array<ArrayBuffer>)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("")}`;
  await store.push({ mediaType: "application/octet-stream", digest, size: file.byteLength }, async () =>
    new Blob([file as Uint8Array<ArrayBuffer>]).stream(),
  );
  const record: ModelRecord = {
    reference: "local.test/big:v1",
    digest: descriptor.digest,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    format: "docker-v0.2",
    config: descriptor,
    files: [
      {
        path: "model.safetensors",
        digest,
        size: file.byteLength,
        mediaType: "application/vnd.docker.ai.safetensors",
        weight: true,
      },
    ],
    pending: [],
    pulledAt: new Date(0).toISOString(),
  };
  return new Model(store, record, {}, undefined);
}

const MATVEC = /* wgsl */ `
@group(0) @binding(0) var<storage, read> w: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(${ROWS})
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  var sum = 0.0;
  for (var c = 0u; c < ${COLS}u; c++) { sum += w[id.x * ${COLS}u + c] * x[c]; }
  y[id.x] = sum;
}`;

describe("WebGPU upload in Chromium (SwiftShader)", () => {
  let device: GPUDevice;
  let model: Model;

  beforeAll(async () => {
    device = await newDevice(await getAdapter(), true);
    model = await pullModel(bed.tensorModel, { proxy: bed.proxyUrl, store: createMemoryStore() });
  });

  it("uploads every tensor bit-exact, widening F16 and BF16 to F32 exactly on the GPU", async () => {
    const progress: number[] = [];
    const buffers = await uploadToGPU(device, model, {
      convert: true,
      chunkSize: 64,
      expected: tensorSpecs().map((t) => t.name),
      onProgress: (p) => progress.push(p.loaded),
    });
    for (const spec of tensorSpecs()) {
      const bytes = await readBack(device, buffers.get(spec.name) as GPUBuffer);
      const count = spec.shape.reduce((n, d) => n * d, 1);
      if (spec.dtype === "I32") {
        expect(Array.from(new Int32Array(bytes, 0, count))).toEqual([7, -1, 42]);
        continue;
      }
      const expected = Array.from(toFloat32(spec.dtype as "F32" | "F16" | "BF16", spec.data as Uint8Array));
      expect(Array.from(new Float32Array(bytes, 0, count)), spec.name).toEqual(expected);
      expect(expected).toEqual(
        values(
          count,
          expected.length === 15 ? 3 : expected.length === 7 ? 4 : expected.length === ROWS ? 2 : 1,
        ),
      );
    }
    expect(progress.at(-1)).toBe(tensorSpecs().reduce((n, t) => n + (t.data?.byteLength ?? 0), 0));
  });

  it("runs a matrix-vector product over an uploaded weight and matches the CPU", async () => {
    const buffers = await uploadToGPU(device, model, { filter: (t) => t.name === "layer.weight" });
    expect([...buffers.keys()]).toEqual(["layer.weight"]);
    const x = Float32Array.from({ length: COLS }, (_, i) => (i % 5) - 2);
    const xBuffer = device.createBuffer({
      size: x.byteLength,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    device.queue.writeBuffer(xBuffer, 0, x);
    const y = device.createBuffer({
      size: ROWS * 4,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
    });
    const pipeline = device.createComputePipeline({
      layout: "auto",
      compute: { module: device.createShaderModule({ code: MATVEC }), entryPoint: "main" },
    });
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(
      0,
      device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: buffers.get("layer.weight") as GPUBuffer } },
          { binding: 1, resource: { buffer: xBuffer } },
          { binding: 2, resource: { buffer: y } },
        ],
      }),
    );
    pass.dispatchWorkgroups(1);
    pass.end();
    device.queue.submit([encoder.finish()]);
    const gpu = Array.from(new Float32Array(await readBack(device, y)));
    const w = values(ROWS * COLS, 1);
    const cpu = Array.from({ length: ROWS }, (_, r) =>
      w.slice(r * COLS, (r + 1) * COLS).reduce((s, v, c) => s + v * (x[c] as number), 0),
    );
    expect(gpu).toEqual(cpu);
  });

  it("refuses a tensor over a real device's limit with GPU_LIMIT before allocating; a model device takes it", async () => {
    const adapter = await getAdapter();
    // Ask for the smallest limits; the browser never goes under the WebGPU defaults (128 MiB bindings).
    const small = await newDevice(adapter, false, {
      requiredLimits: { maxBufferSize: 64, maxStorageBufferBindingSize: 64 },
    });
    const limit = small.limits.maxStorageBufferBindingSize;
    expect(limit).toBeLessThan(adapter.limits.maxStorageBufferBindingSize);
    // An F16 tensor that, widened to F32, needs 4 bytes more than the device can bind.
    const elements = limit / 4 + 1;
    const big = await localModel(
      writeSafetensors([
        { name: "big.weight", dtype: "F16", shape: [elements], data: new Uint8Array(elements * 2) },
      ]),
    );
    let errors = 0;
    small.addEventListener("uncapturederror", () => errors++);
    await expect(uploadToGPU(small, big, { convert: true })).rejects.toMatchObject({
      code: "GPU_LIMIT",
      message: expect.stringMatching(
        new RegExp(`"big.weight".* ${elements * 4}-byte buffer.*maxStorageBufferBindingSize of ${limit}`),
      ),
    });
    // Refused by the check, not by the device: nothing was created, so the device reported no error.
    await new Promise((r) => setTimeout(r, 50));
    expect(errors).toBe(0);
    // The device requestModelDevice asks for (the adapter's limits) takes the same tensor.
    const roomy = await newDevice(await getAdapter(), true); // an adapter gives one device
    expect(roomy.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(elements * 4);
    const buffers = await uploadToGPU(roomy, big, { convert: true });
    expect(buffers.get("big.weight")?.size).toBe(elements * 4);
    for (const buffer of buffers.values()) buffer.destroy();
  });

  it("refuses with INVALID_CHECKPOINT when expected weights are missing", async () => {
    await expect(
      uploadToGPU(device, model, { filter: (t) => t.name === "ids", expected: ["ids", "lm_head.weight"] }),
    ).rejects.toMatchObject({
      code: "INVALID_CHECKPOINT",
      message: expect.stringMatching(/lm_head.weight/),
    });
  });
});

describe("a PyTorch .bin model on WebGPU in Chromium", () => {
  it("pulls it into OPFS through the proxy, uploads it, and every buffer holds the values torch reported", async () => {
    const device = await newDevice(await getAdapter(), true);
    const { createOpfsStore } = await import("../../src/index.js");
    const model = await pullModel(bed.torchModel, {
      proxy: bed.proxyUrl,
      store: createOpfsStore(`torch-${crypto.randomUUID()}`),
    });
    const buffers = await uploadToGPU(device, model, {
      convert: true,
      expected: Object.keys(bed.torchExpected),
    });
    for (const [name, want] of Object.entries(bed.torchExpected)) {
      const count = want.shape.reduce((n, d) => n * d, 1);
      const bytes = await readBack(device, buffers.get(name) as GPUBuffer);
      const got =
        want.dtype === "torch.int64"
          ? Array.from(new BigInt64Array(bytes, 0, count), Number)
          : Array.from(new Float32Array(bytes, 0, count));
      expect(got, name).toEqual(want.values);
    }
  });
});
