/// <reference types="@webgpu/types" />
import { BufferKernel } from "./kernel.js";

/**
 * GPU dequantization of GGUF's Q8_0, Q4_0 and Q4_K blocks to f32. The block layouts are llama.cpp's
 * (ggml-org/llama.cpp, ggml/src/ggml-common.h: `block_q8_0`, `block_q4_0`, `block_q4_K`,
 * `get_scale_min_k4` in ggml/src/ggml-quants.c) and the values those of its Python package
 * (gguf-py/gguf/quants.py: `Q8_0`, `Q4_0`, `Q4_K.dequantize_blocks`), all little-endian:
 *
 * - Q8_0, 32 values in 34 bytes: f16 `d`, then 32 int8 `q`; value j = d × q[j].
 * - Q4_0, 32 values in 18 bytes: f16 `d`, then 16 bytes of nibbles; value j < 16 is the low nibble of
 *   byte j, value j + 16 its high nibble; each is d × (nibble − 8).
 * - Q4_K, 256 values in 144 bytes: f16 `d`, f16 `dmin`, 12 bytes of 6-bit scales and mins, 128
 *   bytes of nibbles. Sub-block s (32 values) has scale sc[s] and min m[s]: for s < 4 the low 6 bits
 *   of bytes s and s + 4; for s ≥ 4 the nibbles of byte s + 4 (low: scale, high: min) topped by the
 *   two high bits of bytes s − 4 and s. Its values are the low (s even) or high (s odd) nibbles of
 *   bytes 32 × ⌊s/2⌋ … + 31, each (d × sc[s]) × nibble − dmin × m[s].
 *
 * WGSL without the `shader-f16` feature: the blocks are not 4-byte aligned (34, 18, 144 bytes), so
 * bytes are read from an `array<u32>` by shifts and the f16 scales widened with `unpack2x16float`.
 * Every product is exact in f32 (an f16 has 11 significant bits, scales 6 and quants 8 or 4), so the
 * only rounding is Q4_K's final subtraction, done as gguf-py does it: the values are numpy's.
 */

/** The ggml types dequantized on the GPU, and each one's shader mode. */
const MODES = { Q8_0: 0, Q4_0: 1, Q4_K: 2 } as const;

/** A ggml type `encodeDequantize` reads. */
export type DequantizableType = keyof typeof MODES;

/** The ggml types `uploadToGPU` dequantizes on the GPU. */
export const DEQUANTIZABLE_TYPES: readonly DequantizableType[] = Object.keys(MODES) as DequantizableType[];

/** True for a dtype whose blocks the GPU dequantizes here. */
export function isDequantizable(dtype: string): dtype is DequantizableType {
  return Object.hasOwn(MODES, dtype);
}

const SHADER = /* wgsl */ `
struct Params { count: u32, mode: u32, width: u32 }
@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

/** The byte at offset o of the raw blocks. */
fn byte_at(o: u32) -> u32 {
  return (src[o >> 2u] >> ((o & 3u) * 8u)) & 0xffu;
}

/** The little-endian f16 at offset o, as f32. */
fn half_at(o: u32) -> f32 {
  return unpack2x16float(byte_at(o) | (byte_at(o + 1u) << 8u)).x;
}

/** Q4_K's 6-bit scale (pick 0) or min (pick 4) of sub-block s, from the 12 bytes at o. */
fn scale_min(o: u32, s: u32, pick: u32) -> u32 {
  if (s < 4u) { return byte_at(o + s + pick) & 63u; }
  let low = (byte_at(o + s + 4u) >> pick) & 15u;
  return low | ((byte_at(o + s - 4u + pick) >> 6u) << 4u);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x + id.y * params.width;
  if (i >= params.count) { return; }
  var value: f32;
  if (params.mode == 0u) {
    // Q8_0
    let o = (i / 32u) * 34u;
    let q = byte_at(o + 2u + i % 32u);
    value = half_at(o) * f32(bitcast<i32>(q << 24u) >> 24u);
  } else if (params.mode == 1u) {
    // Q4_0
    let o = (i / 32u) * 18u;
    let j = i % 32u;
    let q = (byte_at(o + 2u + j % 16u) >> ((j / 16u) * 4u)) & 15u;
    value = half_at(o) * (f32(q) - 8.0);
  } else {
    // Q4_K
    let o = (i / 256u) * 144u;
    let r = i % 256u;
    let s = r / 32u;
    let q = (byte_at(o + 16u + (s / 2u) * 32u + r % 32u) >> ((s & 1u) * 4u)) & 15u;
    let scale = half_at(o) * f32(scale_min(o + 4u, s, 0u));
    let offset = half_at(o + 2u) * f32(scale_min(o + 4u, s, 4u));
    value = scale * f32(q) - offset;
  }
  dst[i] = value;
}`;

const kernel = new BufferKernel("oci-model-loader: ggml blocks to f32", SHADER);

/**
 * Records, on `encoder`, the dequantization of `count` values of `dtype` blocks in `source` (the
 * tensor's raw bytes, padded to 4) into f32 in `target`. Returns the uniform buffer to destroy once
 * the work is done.
 */
export function encodeDequantize(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  dtype: DequantizableType,
  source: GPUBuffer,
  target: GPUBuffer,
  count: number,
): GPUBuffer {
  return kernel.encode(device, encoder, source, target, count, count, MODES[dtype]);
}
