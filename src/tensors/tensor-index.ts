import { OciError } from "../errors.js";
import { indexCheckpoint, isCheckpointPath } from "./checkpoint.js";
import { readHeader, type TensorInfo } from "./safetensors.js";

/** A tensor and the file it lives in. */
export interface TensorEntry extends TensorInfo {
  file: string;
  /**
   * A deflated zip member holding the data (checkpoints): `offset` is then within the member's
   * decompressed bytes, not the file.
   */
  member?: string;
}

/** A safetensors file to index: its size and a ranged reader (a store, or the registry with `Range`). */
export interface TensorFile {
  path: string;
  size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
}

export async function readBytes(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * Builds the tensor index of safetensors files from their headers alone (two small ranged reads
 * per file), in file order. Refuses a name found in two files, and checks
 * `model.safetensors.index.json`'s `weight_map` when given.
 */
export async function buildTensorIndex(
  files: TensorFile[],
  weightMap?: Record<string, string>,
): Promise<Map<string, TensorEntry>> {
  const index = new Map<string, TensorEntry>();
  for (const file of files) {
    const tensors = isCheckpointPath(file.path)
      ? await indexCheckpoint(file)
      : (await readHeader((offset, length) => file.read(offset, length), file.size, file.path)).tensors;
    for (const tensor of tensors) {
      const other = index.get(tensor.name);
      if (other) {
        throw new OciError(
          "INVALID_SAFETENSORS",
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
