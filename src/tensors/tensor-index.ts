import { OciError } from "../errors.js";
import { indexCheckpoint } from "./checkpoint.js";
import { tensorFileKind } from "./files.js";
import { type GgufMetadata, type GgufTensorInfo, readGgufHeader } from "./gguf.js";
import { readHeader } from "./safetensors.js";
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
 * Builds the tensor index of tensor files from their headers alone (two small ranged reads per
 * safetensors file; a checkpoint's zip directory and data.pkl; a GGUF file's key/values and tensor
 * infos), in file order. A file not named as a checkpoint or GGUF (`tensorFileKind`) is read as
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
    const kind = tensorFileKind(file.path);
    const read = (offset: number, length: number) => file.read(offset, length);
    const tensors: Omit<TensorEntry, "file">[] =
      kind === "torch" || kind === "npz"
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
