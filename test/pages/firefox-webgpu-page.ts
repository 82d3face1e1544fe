// A page for the Firefox WebGPU test: a model of test/support/tensor-model.ts's tensors (F32, F16,
// BF16, I32) in a memory store, uploaded with uploadToGPU (F16/BF16 widened by its compute shaders)
// and read back; then a matrix-vector product over the uploaded weight. The Node test compares.
import { createMemoryStore, Model, type ModelRecord, uploadToGPU } from "../../src/index.js";
import { sha256 } from "../support/blobs.js";
import { readBack } from "../support/gpu-readback.js";
import { writeSafetensors } from "../support/safetensors.js";
import { COLS, ROWS, tensorSpecs } from "../support/tensor-model.js";

declare global {
  interface Window {
    gpuCheck(
      x: number[],
    ): Promise<
      | { adapter: null; reason: string }
      | { adapter: string; tensors: Record<string, number[]>; product: number[]; loaded: number }
    >;
  }
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

window.gpuCheck = async (xValues) => {
  if (!("gpu" in navigator)) return { adapter: null, reason: "navigator.gpu is undefined (WebGPU is off)" };
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) return { adapter: null, reason: "navigator.gpu.requestAdapter() gave no adapter" };
  const info = adapter.info;
  const name = [info?.vendor, info?.architecture, info?.device, info?.description].filter(Boolean).join(" ");
  const device = await adapter.requestDevice();
  try {
    const file = writeSafetensors(tensorSpecs());
    const digest = await sha256(file);
    const store = createMemoryStore();
    await store.push({ mediaType: "application/octet-stream", digest, size: file.byteLength }, async () =>
      new Blob([file as Uint8Array<ArrayBuffer>]).stream(),
    );
    const config = await sha256(new Uint8Array(0));
    const record: ModelRecord = {
      reference: "local.test/tensors:v1",
      digest: config,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      format: "docker-v0.2",
      config: { mediaType: "application/octet-stream", digest: config, size: 0 },
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
    const model = new Model(store, record, {}, undefined);
    let loaded = 0;
    const buffers = await uploadToGPU(device, model, {
      convert: true,
      chunkSize: 64,
      onProgress: (p) => {
        loaded = p.loaded;
      },
    });
    const tensors: Record<string, number[]> = {};
    for (const spec of tensorSpecs()) {
      const count = spec.shape.reduce((n, d) => n * d, 1);
      const bytes = await readBack(device, buffers.get(spec.name) as GPUBuffer);
      tensors[spec.name] = Array.from(
        spec.dtype === "I32" ? new Int32Array(bytes, 0, count) : new Float32Array(bytes, 0, count),
      );
    }
    const x = Float32Array.from(xValues);
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
    const product = Array.from(new Float32Array(await readBack(device, y)));
    return { adapter: name || "(unnamed adapter)", tensors, product, loaded };
  } finally {
    device.destroy();
  }
};
