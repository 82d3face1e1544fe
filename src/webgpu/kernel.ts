/// <reference types="@webgpu/types" />
/**
 * A compute shader that reads one buffer and writes another, as the F16/BF16 widening and the GGUF
 * dequantization are: `@binding(0)` the source, `@binding(1)` the target, `@binding(2)` a uniform of
 * four u32 (count, mode, threads per row of workgroups, 0), 64 threads a workgroup. One pipeline per
 * device, made on first use.
 */
export class BufferKernel {
  readonly #label: string;
  readonly #code: string;
  readonly #pipelines = new WeakMap<GPUDevice, GPUComputePipeline>();

  constructor(label: string, code: string) {
    this.#label = label;
    this.#code = code;
  }

  #pipeline(device: GPUDevice): GPUComputePipeline {
    let found = this.#pipelines.get(device);
    if (!found) {
      found = device.createComputePipeline({
        label: this.#label,
        layout: "auto",
        compute: { module: device.createShaderModule({ code: this.#code }), entryPoint: "main" },
      });
      this.#pipelines.set(device, found);
    }
    return found;
  }

  /**
   * Records one pass of `threads` invocations on `encoder` (spread over a second dimension past the
   * device's per-dimension workgroup limit). Returns the uniform buffer to destroy once the work is done.
   */
  encode(
    device: GPUDevice,
    encoder: GPUCommandEncoder,
    source: GPUBuffer,
    target: GPUBuffer,
    threads: number,
    count: number,
    mode: number,
  ): GPUBuffer {
    const groups = Math.ceil(threads / 64);
    const x = Math.max(1, Math.min(groups, device.limits.maxComputeWorkgroupsPerDimension));
    const y = Math.max(1, Math.ceil(groups / x));
    const params = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(params, 0, new Uint32Array([count, mode, x * 64, 0]));
    const compute = this.#pipeline(device);
    const bindGroup = device.createBindGroup({
      layout: compute.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: source } },
        { binding: 1, resource: { buffer: target } },
        { binding: 2, resource: { buffer: params } },
      ],
    });
    const pass = encoder.beginComputePass();
    pass.setPipeline(compute);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y);
    pass.end();
    return params;
  }
}
