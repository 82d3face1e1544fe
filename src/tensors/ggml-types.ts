import type { Dtype } from "./safetensors.js";

/**
 * The ggml tensor types a GGUF file may use, by type id: name, elements per block and bytes per
 * block. Ids and sizes as llama.cpp defines them (ggml-org/llama.cpp, gguf-py/gguf/constants.py:
 * `GGMLQuantizationType` and `GGML_QUANT_SIZES`; ids 4, 5 and 31–33, 36–38 are retired or were never
 * written to files).
 */
const TABLE = [
  [0, "F32", 1, 4],
  [1, "F16", 1, 2],
  [2, "Q4_0", 32, 18],
  [3, "Q4_1", 32, 20],
  [6, "Q5_0", 32, 22],
  [7, "Q5_1", 32, 24],
  [8, "Q8_0", 32, 34],
  [9, "Q8_1", 32, 40],
  [10, "Q2_K", 256, 84],
  [11, "Q3_K", 256, 110],
  [12, "Q4_K", 256, 144],
  [13, "Q5_K", 256, 176],
  [14, "Q6_K", 256, 210],
  [15, "Q8_K", 256, 292],
  [16, "IQ2_XXS", 256, 66],
  [17, "IQ2_XS", 256, 74],
  [18, "IQ3_XXS", 256, 98],
  [19, "IQ1_S", 256, 50],
  [20, "IQ4_NL", 32, 18],
  [21, "IQ3_S", 256, 110],
  [22, "IQ2_S", 256, 82],
  [23, "IQ4_XS", 256, 136],
  [24, "I8", 1, 1],
  [25, "I16", 1, 2],
  [26, "I32", 1, 4],
  [27, "I64", 1, 8],
  [28, "F64", 1, 8],
  [29, "IQ1_M", 256, 56],
  [30, "BF16", 1, 2],
  [34, "TQ1_0", 256, 54],
  [35, "TQ2_0", 256, 66],
  [39, "MXFP4", 32, 17],
  [40, "NVFP4", 64, 36],
  [41, "Q1_0", 128, 18],
] as const;

/** A ggml tensor type name: `F32`, `F16`, `BF16`, `Q8_0`, `Q4_K`, `IQ2_XS`… */
export type GgmlType = (typeof TABLE)[number][1];

/**
 * A tensor's element type: a safetensors dtype (`F32`, `BF16`, `I64`…) or, for GGUF files, the ggml
 * type name — the quantized ones (`Q8_0`, `Q4_K`…) are blocks of values, read as raw bytes.
 */
export type TensorDtype = Dtype | GgmlType;

/** What a ggml type id stands for. */
export interface GgmlTypeInfo {
  /** The ggml type id in the file. */
  id: number;
  /** Its name (`Q4_K`). */
  name: GgmlType;
  /** Elements per block (1 for the plain types, 32 for Q8_0, 256 for the K-quants). */
  blockSize: number;
  /** Bytes per block. */
  typeSize: number;
}

const BY_ID = new Map<number, GgmlTypeInfo>(
  TABLE.map(([id, name, blockSize, typeSize]) => [id, { id, name, blockSize, typeSize }]),
);
const BY_NAME = new Map<string, GgmlTypeInfo>([...BY_ID.values()].map((t) => [t.name, t]));

/** The ggml type with this id, or `undefined` for an id llama.cpp does not define. */
export function ggmlTypeById(id: number): GgmlTypeInfo | undefined {
  return BY_ID.get(id);
}

/** The ggml type of this name, or `undefined` (also for safetensors-only dtypes such as `U8`). */
export function ggmlType(name: string): GgmlTypeInfo | undefined {
  return BY_NAME.get(name);
}

/** True for a ggml type stored in blocks (`Q8_0`, `Q4_K`…), whose bytes are not one value each. */
export function isQuantized(dtype: string): boolean {
  return (ggmlType(dtype)?.blockSize ?? 1) > 1;
}
