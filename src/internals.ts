// oci-model-loader/internals: the parsers and helpers that tests and tools (the CLI, the layout
// server, the benchmarks) use, below the public API of ./index.ts. Re-exports only. Not part of the
// API: any release may change or remove them, so applications should not import them.

export { digestBytes } from "./digest/hasher.js";
export type { ExpectedContent, VerifyStreamOptions } from "./digest/verify.js";
export { createVerifyStream } from "./digest/verify.js";
export { detectFormat, layerPaths } from "./model/format.js";
export { modelInfo } from "./model/info.js";
export { parseManifest } from "./oci/manifest.js";
export { digestProblem, registryApiHost } from "./reference.js";
export type { Challenge } from "./registry/challenge.js";
export { parseChallenges } from "./registry/challenge.js";
export { copyBlob } from "./store/graph.js";
export type { GgmlTypeInfo } from "./tensors/ggml-types.js";
export { ggmlType, ggmlTypeById, isQuantized } from "./tensors/ggml-types.js";
export type { GgufHeader, GgufMetadata, GgufTensorInfo, GgufValue } from "./tensors/gguf.js";
export { GGUF_HEADER_LIMIT, GGUF_MAX_KEYS, GGUF_MAX_TENSORS, readGgufHeader } from "./tensors/gguf.js";
export type { SafetensorsHeader } from "./tensors/safetensors.js";
export { DTYPE_SIZES, HEADER_LIMIT, parseHeader, readHeader } from "./tensors/safetensors.js";
export { buildTensorIndex } from "./tensors/tensor-index.js";
export type { TensorFile } from "./tensors/types.js";
