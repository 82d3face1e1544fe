/// <reference types="@webgpu/types" />
/** WGSL that widens packed 16-bit floats to f32: `unpack2x16float` for f16, a shift for bf16. */
const SHADER = /* wgsl */ `
struct Params { count: u32, mode: u32, width: u32 }
@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let pair = id.x + id.y * params.width;
  let first = pair * 2u;
  if (first >= params.count) { return; }
  let word = src[pair];
  var values: vec2<f32>;
  if (params.mode == 0u) {
    values = unpack2x16float(word);
  } else {
    values = vec2<f32>(bitcast<f32>(word << 16u), bitcast<f32>(word & 0xffff0000u));
  }
  dst[first] = values.x;
  if (first + 1u < params.count) { dst[first + 1u] = values.y; }
}`;

const pipelines = new WeakMap<GPUDevice, GPUComputePipeline>();

function pipeline(device: GPUDevice): GPUComputePipeline {
  let found = pipelines.get(device);
  if (!found) {
    found = device.createComputePipeline({
      label: "oci-model-loader: 16-bit float to f32",
      layout: "auto",
      compute: { module: device.createShaderModule({ code: SHADER }), entryPoint: "main" },
    });
    pipelines.set(device, found);
  }
  return found;
}

/**
 * Records, on `encoder`, the widening of `count` f16 or bf16 values in `source` (packed two per
 * u32) into f32 in `target`. Returns the uniform buffer to destroy once the work is done.
 */
export function encodeToF32(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  dtype: "F16" | "BF16",
  source: GPUBuffer,
  target: GPUBuffer,
  count: number,
): GPUBuffer {
  const groups = Math.ceil(Math.ceil(count / 2) / 64);
  const x = Math.max(1, Math.min(groups, device.limits.maxComputeWorkgroupsPerDimension));
  const y = Math.max(1, Math.ceil(groups / x));
  const params = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(params, 0, new Uint32Array([count, dtype === "F16" ? 0 : 1, x * 64, 0]));
  const compute = pipeline(device);
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
