import type { TensorDtype } from "./ggml-types.js";

/** The typed arrays `typedArray` returns, one per element width and kind. */
export type TypedArray =
  | Float64Array
  | Float32Array
  | BigInt64Array
  | BigUint64Array
  | Int32Array
  | Uint32Array
  | Int16Array
  | Uint16Array
  | Int8Array
  | Uint8Array;

type View = new (buffer: ArrayBuffer, offset: number, length: number) => TypedArray;

const VIEWS: Partial<Record<TensorDtype, View & { BYTES_PER_ELEMENT: number }>> = {
  F64: Float64Array,
  F32: Float32Array,
  I64: BigInt64Array,
  U64: BigUint64Array,
  I32: Int32Array,
  U32: Uint32Array,
  I16: Int16Array,
  U16: Uint16Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I8: Int8Array,
  U8: Uint8Array,
  BOOL: Uint8Array,
  F8_E4M3: Uint8Array,
  F8_E5M2: Uint8Array,
};

/**
 * A typed-array view of little-endian tensor bytes (a copy when they are not aligned).
 * F16 and BF16 come as raw `Uint16Array` bits (see `toFloat32`); F8 as raw `Uint8Array`; the
 * quantized ggml types of GGUF files (`Q8_0`, `Q4_K`…) as their raw block bytes, `bytes` itself.
 *
 * @param dtype The tensor's dtype (a `TensorEntry`'s): picks the array type.
 * @param bytes The tensor's bytes, a whole number of elements (or blocks).
 * @returns A view of `bytes`, or of a copy when `bytes` does not start at a multiple of the element size.
 */
export function typedArray(dtype: TensorDtype, bytes: Uint8Array): TypedArray {
  const View = VIEWS[dtype];
  if (View === undefined) return bytes;
  const size = View.BYTES_PER_ELEMENT;
  const aligned = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  return new View(aligned.buffer as ArrayBuffer, aligned.byteOffset, aligned.byteLength / size);
}

/** IEEE half → float. */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/**
 * F16, BF16 or F32 tensor bytes as `Float32Array` (exact: every f16 and bf16 value is an f32).
 *
 * @param dtype How `bytes` encode each value.
 * @param bytes The tensor's little-endian bytes.
 * @returns A new array for F16 and BF16; for F32, a view of `bytes` (a copy when not aligned).
 */
export function toFloat32(dtype: "F16" | "BF16" | "F32", bytes: Uint8Array): Float32Array {
  if (dtype === "F32") return typedArray("F32", bytes) as Float32Array;
  const bits = typedArray(dtype, bytes) as Uint16Array;
  const out = new Float32Array(bits.length);
  if (dtype === "BF16") {
    const raw = new Uint32Array(out.buffer);
    for (let i = 0; i < bits.length; i++) raw[i] = (bits[i] as number) << 16;
  } else {
    for (let i = 0; i < bits.length; i++) out[i] = halfToFloat(bits[i] as number);
  }
  return out;
}
