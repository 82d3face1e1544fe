import { modelLayerType } from "../oci/media-types.js";

/**
 * The tensor files this library reads, by name: safetensors, the zip-container checkpoints —
 * PyTorch `.bin`/`.pt`/`.pth` (`torch.save`) and NumPy `.npz` — and GGUF (llama.cpp).
 */
export type TensorFileKind = "safetensors" | "torch" | "npz" | "gguf";

/**
 * What kind of tensor file `path` names (case-insensitive), or `undefined` for any other file:
 * ONNX and the other weights this library stores but does not index, and index files such as
 * `model.safetensors.index.json`.
 */
export function tensorFileKind(path: string): TensorFileKind | undefined {
  const extension = /\.(safetensors|bin|pt|pth|npz|gguf)$/i.exec(path)?.[1]?.toLowerCase();
  if (extension === undefined) return undefined;
  if (extension === "safetensors" || extension === "npz" || extension === "gguf") return extension;
  return "torch";
}

/** True for a file whose tensors this library indexes and reads (see `tensorFileKind`). */
export function isTensorFile(path: string): boolean {
  return tensorFileKind(path) !== undefined;
}

/**
 * True for a weight file whose tensors are indexed: a tensor file by name (`isTensorFile`), or an
 * Ollama tensor layer's file (one tensor, its name, dtype and shape in its media type), whatever
 * its name.
 */
export function isIndexedTensorFile(path: string, mediaType?: string): boolean {
  return (
    isTensorFile(path) || (mediaType !== undefined && modelLayerType(mediaType)?.fileFormat === "tensor")
  );
}

/** Weights stored and pulled as such, but not read tensor by tensor here. */
const OTHER_WEIGHT_FILE = /\.(gguf|ckpt|onnx|h5|msgpack)$/i;

/**
 * True for a weight file name (not an index such as `model.safetensors.index.json`): a tensor file,
 * or GGUF, `.ckpt`, ONNX, Keras `.h5`, Flax `.msgpack`.
 */
export function isWeightPath(path: string): boolean {
  return isTensorFile(path) || OTHER_WEIGHT_FILE.test(path);
}

/**
 * True for one of a model's weight files: by the media type of its layer where a model format
 * defines it (Docker's `gguf.v3`, `safetensors`, `dduf`; ModelPack `weight`; KitOps `model`), so
 * that a projector, a LoRA adapter, a chat template or a license is never one whatever its name
 * (`mmproj-model-f16.gguf`); by its name (`isWeightPath`) where the media type does not say: a
 * generic file (Docker's `model.file`), a file unpacked from an archive, an unknown type.
 */
export function isWeightFile(path: string, mediaType?: string): boolean {
  const role = mediaType === undefined ? undefined : modelLayerType(mediaType)?.role;
  if (role === undefined || role === "file") return isWeightPath(path);
  return role === "weights";
}
