// A reference safetensors writer for tests (web APIs only), and f16/bf16 encoders.
import type { Dtype } from "../../src/index.js";
import { DTYPE_SIZES } from "../../src/internals.js";

export interface TensorSpec {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** Raw little-endian bytes; zero-filled when absent. */
  data?: Uint8Array;
}

/** Writes a safetensors file: 8-byte length, JSON header (padded with spaces to 8), data in order. */
export function writeSafetensors(tensors: TensorSpec[], metadata?: Record<string, string>): Uint8Array {
  let offset = 0;
  // A null-prototype object, so a tensor named "__proto__" becomes a key like any other.
  const header: Record<string, unknown> = Object.create(null);
  if (metadata) header.__metadata__ = metadata;
  const blobs: Uint8Array[] = [];
  for (const t of tensors) {
    const length = t.shape.reduce((n, d) => n * d, 1) * DTYPE_SIZES[t.dtype];
    const data = t.data ?? new Uint8Array(length);
    if (data.byteLength !== length) throw new Error(`${t.name}: ${data.byteLength} bytes for ${length}`);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + length] };
    blobs.push(data);
    offset += length;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.byteLength + offset);
  new DataView(out.buffer).setUint32(0, head.byteLength, true);
  out.set(head, 8);
  let at = 8 + head.byteLength;
  for (const b of blobs) {
    out.set(b, at);
    at += b.byteLength;
  }
  return out;
}

export function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}

/** bf16 of values whose low 16 bits of f32 are zero (exactly representable). */
export function bf16Bytes(values: number[]): Uint8Array {
  const bits = new Uint32Array(new Float32Array(values).buffer);
  return new Uint8Array(Uint16Array.from(bits, (b) => b >>> 16).buffer);
}

/** f16 of values exactly representable in half precision (normal range, ≤ 11 significant bits). */
export function f16Bytes(values: number[]): Uint8Array {
  const out = new Uint16Array(values.length);
  values.forEach((v, i) => {
    if (v === 0) return;
    const sign = v < 0 ? 0x8000 : 0;
    const a = Math.abs(v);
    const exponent = Math.floor(Math.log2(a));
    const fraction = Math.round((a / 2 ** exponent - 1) * 1024);
    out[i] = sign | ((exponent + 15) << 10) | fraction;
  });
  return new Uint8Array(out.buffer);
}
