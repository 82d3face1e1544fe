// The demo model on WebGPU: one dispatch computes the logits of the next character.
import { type Model, requestModelDevice, uploadToGPU } from "../src/index.js";
import { CONTEXT, EMBED, generate, HIDDEN, TENSOR_NAMES, V } from "./char-mlp.js";

const SHADER = /* wgsl */ `
@group(0) @binding(0) var<storage, read> embed: array<f32>;
@group(0) @binding(1) var<storage, read> w1: array<f32>;
@group(0) @binding(2) var<storage, read> b1: array<f32>;
@group(0) @binding(3) var<storage, read> w2: array<f32>;
@group(0) @binding(4) var<storage, read> b2: array<f32>;
@group(0) @binding(5) var<storage, read> context: array<u32>;
@group(0) @binding(6) var<storage, read_write> logits: array<f32>;
var<workgroup> hidden: array<f32, ${HIDDEN}>;

@compute @workgroup_size(${HIDDEN})
fn main(@builtin(local_invocation_id) id: vec3<u32>) {
  let j = id.x;
  var s = b1[j];
  for (var c = 0u; c < ${CONTEXT}u; c++) {
    for (var e = 0u; e < ${EMBED}u; e++) {
      s += embed[context[c] * ${EMBED}u + e] * w1[(c * ${EMBED}u + e) * ${HIDDEN}u + j];
    }
  }
  hidden[j] = tanh(s);
  workgroupBarrier();
  if (j < ${V}u) {
    var o = b2[j];
    for (var k = 0u; k < ${HIDDEN}u; k++) { o += hidden[k] * w2[k * ${V}u + j]; }
    logits[j] = o;
  }
}`;

export interface GpuInfo {
  adapter: string;
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

export class CharMlpGpu {
  readonly info: GpuInfo;
  /** Largest difference between the f32 weights and the bf16 copy widened on the GPU. */
  readonly bf16Difference: number;
  readonly #device: GPUDevice;
  readonly #pipeline: GPUComputePipeline;
  readonly #bindGroup: GPUBindGroup;
  readonly #context: GPUBuffer;
  readonly #logits: GPUBuffer;
  readonly #readback: GPUBuffer;

  private constructor(
    device: GPUDevice,
    info: GpuInfo,
    buffers: Map<string, GPUBuffer>,
    bf16Difference: number,
  ) {
    this.#device = device;
    this.info = info;
    this.bf16Difference = bf16Difference;
    this.#context = device.createBuffer({
      size: 16,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    this.#logits = device.createBuffer({
      size: V * 4,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
    });
    this.#readback = device.createBuffer({
      size: V * 4,
      usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ,
    });
    this.#pipeline = device.createComputePipeline({
      layout: "auto",
      compute: { module: device.createShaderModule({ code: SHADER }), entryPoint: "main" },
    });
    const names = [
      TENSOR_NAMES.embed,
      TENSOR_NAMES.hiddenWeight,
      TENSOR_NAMES.hiddenBias,
      TENSOR_NAMES.outWeight,
      TENSOR_NAMES.outBias,
    ];
    this.#bindGroup = device.createBindGroup({
      layout: this.#pipeline.getBindGroupLayout(0),
      entries: [
        ...names.map((name, binding) => ({ binding, resource: { buffer: buffers.get(name) as GPUBuffer } })),
        { binding: 5, resource: { buffer: this.#context } },
        { binding: 6, resource: { buffer: this.#logits } },
      ],
    });
  }

  /** Uploads the model's tensors (the bf16 copy widened to f32 on the GPU) and builds the pipeline. */
  static async create(
    model: Model,
    onProgress?: (loaded: number, total: number) => void,
  ): Promise<CharMlpGpu> {
    if (!("gpu" in navigator)) throw new Error("This browser has no WebGPU (navigator.gpu is missing).");
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) throw new Error("WebGPU is present but no adapter was found.");
    const device = await requestModelDevice(adapter);
    const buffers = await uploadToGPU(device, model, {
      convert: true,
      expected: Object.values(TENSOR_NAMES),
      onProgress: (p) => onProgress?.(p.loaded, p.total),
    });
    const info = adapter.info as GPUAdapterInfo | undefined;
    const name =
      [info?.vendor, info?.architecture, info?.description].filter(Boolean).join(" ") || "unknown adapter";
    let difference = 0;
    for (const key of Object.values(TENSOR_NAMES)) {
      const [a, b] = await Promise.all([
        read(device, buffers.get(key)),
        read(device, buffers.get(`bf16.${key}`)),
      ]);
      for (let i = 0; i < a.length; i++)
        difference = Math.max(difference, Math.abs((a[i] as number) - (b[i] as number)));
    }
    return new CharMlpGpu(
      device,
      {
        adapter: name,
        maxBufferSize: device.limits.maxBufferSize,
        maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
      },
      buffers,
      difference,
    );
  }

  /** Logits of the next character after `context` (CONTEXT token ids), computed on the GPU. */
  async logits(context: number[]): Promise<Float32Array> {
    const device = this.#device;
    device.queue.writeBuffer(this.#context, 0, new Uint32Array([...context, 0]));
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(this.#pipeline);
    pass.setBindGroup(0, this.#bindGroup);
    pass.dispatchWorkgroups(1);
    pass.end();
    encoder.copyBufferToBuffer(this.#logits, 0, this.#readback, 0, V * 4);
    device.queue.submit([encoder.finish()]);
    await this.#readback.mapAsync(GPUMapMode.READ);
    const out = new Float32Array(this.#readback.getMappedRange().slice(0));
    this.#readback.unmap();
    return out;
  }

  /** Generates words on the GPU; tokens per second measured. */
  async generate(
    count: number,
    seed: number,
  ): Promise<{ words: string[]; tokens: number; perSecond: number }> {
    const started = performance.now();
    const result = await generate((context) => this.logits(context), count, seed);
    return { ...result, perSecond: result.tokens / ((performance.now() - started) / 1000) };
  }
}

async function read(device: GPUDevice, buffer: GPUBuffer | undefined): Promise<Float32Array> {
  if (!buffer) return new Float32Array(0);
  const copy = device.createBuffer({
    size: buffer.size,
    usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ,
  });
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(buffer, 0, copy, 0, buffer.size);
  device.queue.submit([encoder.finish()]);
  await copy.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(copy.getMappedRange().slice(0));
  copy.destroy();
  return out;
}
