/// <reference types="@webgpu/types" />
import { BufferKernel } from "./kernel.js";

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

const kernel = new BufferKernel("oci-model-loader: 16-bit float to f32", SHADER);

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
  return kernel.encode(device, encoder, source, target, Math.ceil(count / 2), count, dtype === "F16" ? 0 : 1);
}
