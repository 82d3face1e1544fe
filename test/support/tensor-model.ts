// A small model with F32, F16, BF16 and I32 tensors, deterministic, for the WebGPU tests (web APIs only).
import { bf16Bytes, f16Bytes, f32Bytes, type TensorSpec, writeSafetensors } from "./safetensors.js";

/** Values exact in f32, f16 and bf16 alike: multiples of 1/4 up to 25 in magnitude. */
export function values(count: number, seed: number): number[] {
  return Array.from({ length: count }, (_, i) => (((i * 37 + seed * 11) % 201) - 100) / 4);
}

export const ROWS = 8;
export const COLS = 16;

export function tensorSpecs(): TensorSpec[] {
  return [
    { name: "layer.weight", dtype: "F32", shape: [ROWS, COLS], data: f32Bytes(values(ROWS * COLS, 1)) },
    { name: "layer.bias", dtype: "F32", shape: [ROWS], data: f32Bytes(values(ROWS, 2)) },
    { name: "half.weight", dtype: "F16", shape: [5, 3], data: f16Bytes(values(15, 3)) },
    { name: "brain.weight", dtype: "BF16", shape: [7], data: bf16Bytes(values(7, 4)) },
    { name: "ids", dtype: "I32", shape: [3], data: new Uint8Array(new Int32Array([7, -1, 42]).buffer) },
  ];
}

/** Two shards, so the upload crosses files. */
export function shards(): Uint8Array[] {
  const specs = tensorSpecs();
  return [writeSafetensors(specs.slice(0, 2)), writeSafetensors(specs.slice(2))];
}
