import { beforeAll, describe, expect, inject, it } from "vitest";
import {
  createMemoryStore,
  type Model,
  pullModel,
  requestModelDevice,
  toFloat32,
  uploadToGPU,
} from "../../src/index.js";
import { COLS, ROWS, tensorSpecs, values } from "../support/tensor-model.js";

const bed = inject("bed");

async function readBack(device: GPUDevice, buffer: GPUBuffer): Promise<ArrayBuffer> {
  const copy = device.createBuffer({
    size: buffer.size,
    usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ,
  });
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(buffer, 0, copy, 0, buffer.size);
  device.queue.submit([encoder.finish()]);
  await copy.mapAsync(GPUMapMode.READ);
  const bytes = copy.getMappedRange().slice(0);
  copy.destroy();
  return bytes;
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
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) throw new Error("no WebGPU adapter: is Chromium started with --enable-unsafe-webgpu?");
    device = await requestModelDevice(adapter);
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

  it("refuses a tensor over the device's limits with GPU_LIMIT, and missing expected weights", async () => {
    const adapter = (await navigator.gpu.requestAdapter()) as GPUAdapter;
    const small = await adapter.requestDevice();
    const tiny = {
      ...small,
      limits: { ...small.limits, maxBufferSize: 64, maxStorageBufferBindingSize: 64 },
    } as unknown as GPUDevice;
    await expect(uploadToGPU(tiny, model)).rejects.toMatchObject({
      code: "GPU_LIMIT",
      message: expect.stringMatching(/"layer.weight".*maxStorageBufferBindingSize of 64/),
    });
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
    const adapter = (await navigator.gpu.requestAdapter()) as GPUAdapter;
    const device = await requestModelDevice(adapter);
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
