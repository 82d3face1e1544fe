import { OciError } from "../errors.js";
import { ollamaTensorParameters } from "../oci/media-types.js";
import { indexCheckpoint } from "./checkpoint.js";
import { tensorFileKind } from "./files.js";
import { ggmlType, type TensorDtype } from "./ggml-types.js";
import { type GgufMetadata, type GgufTensorInfo, readGgufHeader } from "./gguf.js";
import { DTYPE_SIZES, readHeader } from "./safetensors.js";
import type { TensorEntry, TensorFile } from "./types.js";

async function readGguf(
  read: (offset: number, length: number) => Promise<Uint8Array>,
  file: TensorFile,
  metadata: Map<string, GgufMetadata> | undefined,
): Promise<GgufTensorInfo[]> {
  const header = await readGgufHeader(read, file.size, file.path);
  metadata?.set(file.path, header.metadata);
  return header.tensors;
}

/**
 * The tensor an Ollama tensor layer's file holds (ollama/ollama server/internal/manifest/manifest.go:
 * `application/vnd.ollama.image.tensor; name=<name>; dtype=<dtype>; shape=<d0,d1,…>`, one tensor per
 * blob): the whole file, its name, dtype and shape from the media type. The dtype, read
 * case-insensitively, must be one this library knows — a safetensors dtype (`F32`, `BF16`, `I64`…)
 * or a ggml type (`Q4_K`…, whole blocks) — and the shape times its size must be the file's size.
 * Undefined for a file of any other media type.
 *
 * @throws {OciError} `INVALID_CHECKPOINT` for missing or malformed parameters, an unknown dtype, a
 *   shape that is not whole blocks, or a size that does not match.
 */
export function ollamaTensorEntry(
  file: Pick<TensorFile, "path" | "size" | "mediaType">,
): Omit<TensorEntry, "file"> | undefined {
  if (file.mediaType === undefined) return undefined;
  const tensor = ollamaTensorParameters(file.mediaType);
  if (tensor === undefined) return undefined;
  const fail = (why: string) => new OciError("INVALID_CHECKPOINT", `Cannot index ${file.path}: ${why}`);
  if ("problem" in tensor) throw fail(tensor.problem);
  const dtype = tensor.dtype.toUpperCase();
  const elements = tensor.shape.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(elements)) throw fail(`tensor "${tensor.name}" has too many elements`);
  let length: number;
  if (Object.hasOwn(DTYPE_SIZES, dtype)) {
    length = elements * DTYPE_SIZES[dtype as keyof typeof DTYPE_SIZES];
  } else {
    const ggml = ggmlType(dtype);
    if (ggml === undefined)
      throw fail(`tensor "${tensor.name}" has the dtype "${tensor.dtype}", which this library does not know`);
    if (elements % ggml.blockSize !== 0) {
      throw fail(
        `tensor "${tensor.name}" (${dtype}, shape [${tensor.shape.join(", ")}]) is not whole blocks of ${ggml.blockSize}`,
      );
    }
    length = (elements / ggml.blockSize) * ggml.typeSize;
  }
  if (length !== file.size) {
    throw fail(
      `tensor "${tensor.name}" (${dtype}, shape [${tensor.shape.join(", ")}]) is ${length} bytes, but its layer is ${file.size}`,
    );
  }
  return { name: tensor.name, dtype: dtype as TensorDtype, shape: tensor.shape, offset: 0, length };
}

/**
 * Builds the tensor index of tensor files from their headers alone (two small ranged reads per
 * safetensors file; a checkpoint's zip directory and data.pkl; a GGUF file's key/values and tensor
 * infos; nothing for an Ollama tensor layer, whose media type says it all), in file order. A file not named as a checkpoint or GGUF (`tensorFileKind`) is read as
 * safetensors. Refuses a name found in two files, and checks
 * `model.safetensors.index.json`'s `weight_map` when given.
 */
export async function buildTensorIndex(
  files: TensorFile[],
  weightMap?: Record<string, string>,
  /** Filled with each GGUF file's metadata, by path, read from the same header bytes. */
  ggufMetadata?: Map<string, GgufMetadata>,
): Promise<Map<string, TensorEntry>> {
  const index = new Map<string, TensorEntry>();
  for (const file of files) {
    const layer = ollamaTensorEntry(file);
    const kind = layer ? "tensor" : tensorFileKind(file.path);
    const read = (offset: number, length: number) => file.read(offset, length);
    const tensors: Omit<TensorEntry, "file">[] = layer
      ? [layer]
      : kind === "torch" || kind === "npz"
        ? await indexCheckpoint(file)
        : kind === "gguf"
          ? await readGguf(read, file, ggufMetadata)
          : (await readHeader(read, file.size, file.path)).tensors;
    for (const tensor of tensors) {
      const other = index.get(tensor.name);
      if (other) {
        // Named after the format of the second file: safetensors', else the checkpoint code.
        throw new OciError(
          kind === undefined || kind === "safetensors" ? "INVALID_SAFETENSORS" : "INVALID_CHECKPOINT",
          `Cannot index the model: tensor "${tensor.name}" is in both ${other.file} and ${file.path}`,
        );
      }
      index.set(tensor.name, { ...tensor, file: file.path });
    }
  }
  if (weightMap) {
    const base = (path: string) => path.split("/").at(-1);
    for (const [name, entry] of index) {
      const mapped = weightMap[name];
      if (mapped !== undefined && base(mapped) !== base(entry.file)) {
        throw new OciError(
          "INVALID_SAFETENSORS",
          `Cannot index the model: "${name}" is in ${entry.file}, but the index file says ${mapped}`,
        );
      }
    }
    const missing = Object.keys(weightMap).filter((name) => !index.has(name));
    if (missing.length) {
      throw new OciError(
        "INVALID_SAFETENSORS",
        `Cannot index the model: model.safetensors.index.json lists tensors no file holds: ${missing.slice(0, 10).join(", ")}${missing.length > 10 ? "…" : ""}`,
      );
    }
  }
  return index;
}
