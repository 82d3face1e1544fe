import { OciError } from "../errors.js";
import { readAll } from "../streams.js";
import { isIndexedTensorFile, tensorFileKind } from "./files.js";
import type { TensorDtype } from "./ggml-types.js";
import { type GgufMetadata, readGgufHeader } from "./gguf.js";
import { buildTensorIndex } from "./tensor-index.js";
import type { TensorEntry, TensorFile, TensorSource } from "./types.js";
import { readZip } from "./zip.js";

/** A tensor as the iterator yields it. */
export interface Tensor {
  /** The tensor's name in its file. */
  name: string;
  /** The path of the model file it is in. */
  file: string;
  /** Its element type (a ggml type name for a GGUF tensor). */
  dtype: TensorDtype;
  /** Its dimensions, outermost first. */
  shape: number[];
  /** Its bytes (little-endian, as stored). */
  data(): Promise<Uint8Array>;
}

const tensorOf = (entry: TensorEntry, bytes: Uint8Array): Tensor => ({
  name: entry.name,
  file: entry.file,
  dtype: entry.dtype,
  shape: entry.shape,
  data: async () => bytes,
});

/** The weight files whose tensors are indexed: tensor files by name, and Ollama tensor layers' files. */
function indexedPaths(source: TensorSource): string[] {
  return source.weights.filter((path) => isIndexedTensorFile(path, source.file(path).mediaType));
}

function tensorFiles(source: TensorSource): TensorFile[] {
  return indexedPaths(source).map((path) => {
    const file = source.file(path);
    return {
      path,
      size: file.size,
      ...(file.mediaType === undefined ? {} : { mediaType: file.mediaType }),
      read: async (offset, length) => readAll(await file.stream({ offset, length })),
    };
  });
}

/** The largest `model.safetensors.index.json` read whole: the biggest models' are some 10 MiB. */
const WEIGHT_MAP_LIMIT = 64 * 1024 * 1024;

async function weightMap(source: TensorSource): Promise<Record<string, string> | undefined> {
  const path = [...source.files.keys()].find((p) => p.endsWith("model.safetensors.index.json"));
  if (!path) return undefined;
  const file = source.file(path);
  if (file.size > WEIGHT_MAP_LIMIT) {
    throw new OciError(
      "UNSUPPORTED_ARTIFACT",
      `Cannot index ${source.reference}: its ${path} is ${file.size} bytes, over the ${WEIGHT_MAP_LIMIT}-byte limit`,
    );
  }
  const json = JSON.parse(await new Response(await file.stream()).text()) as {
    weight_map?: Record<string, string>;
  };
  return json.weight_map;
}

/** The tensor index of a stored model: name → file, dtype, shape, offset, length. */
export async function tensorIndex(source: TensorSource): Promise<Map<string, TensorEntry>> {
  return buildTensorIndex(tensorFiles(source), await weightMap(source));
}

/**
 * Every tensor of a stored model, file by file in load order and by offset within a file, each file
 * read once, sequentially (vLLM's weights iterator). Call `data()` before moving on.
 */
export async function* iterateTensors(source: TensorSource): AsyncGenerator<Tensor> {
  const index = await tensorIndex(source);
  for (const path of indexedPaths(source)) {
    const entries = [...index.values()].filter((t) => t.file === path);
    if (entries.length === 0) continue;
    const kind = tensorFileKind(path);
    if (kind !== "safetensors" && kind !== "gguf") {
      // Checkpoint tensors may share storage or sit in deflated members: read each by itself.
      for (const entry of entries) {
        const bytes = await readEntry(source, entry);
        yield tensorOf(entry, bytes);
      }
      continue;
    }
    // Safetensors data is contiguous; GGUF tensors are padded to the alignment, skipped here.
    entries.sort((a, b) => a.offset - b.offset);
    let position = entries[0]?.offset ?? 0;
    const reader = (await source.file(path).stream({ offset: position })).getReader();
    let pending: Uint8Array = new Uint8Array(0);
    const take = async (length: number, keep = true): Promise<Uint8Array> => {
      const out = new Uint8Array(keep ? length : 0);
      let filled = 0;
      while (filled < length) {
        if (pending.byteLength === 0) {
          const { done, value } = await reader.read();
          if (done)
            throw new OciError(
              kind === "gguf" ? "INVALID_CHECKPOINT" : "INVALID_SAFETENSORS",
              `Cannot read ${path}: it ended before its last tensor`,
            );
          pending = value;
        }
        const n = Math.min(length - filled, pending.byteLength);
        if (keep) out.set(pending.subarray(0, n), filled);
        pending = pending.subarray(n);
        filled += n;
      }
      return out;
    };
    try {
      for (const entry of entries) {
        await take(entry.offset - position, false);
        const bytes = await take(entry.length);
        position = entry.offset + entry.length;
        yield tensorOf(entry, bytes);
      }
    } finally {
      await reader.cancel().catch(() => {});
    }
  }
}

/** One tensor's bytes, by a ranged read. `NOT_FOUND` when the model has no such tensor. */
export async function readTensor(
  source: TensorSource,
  name: string,
  index?: Map<string, TensorEntry>,
): Promise<Uint8Array> {
  const entry = (index ?? (await tensorIndex(source))).get(name);
  if (!entry)
    throw new OciError("NOT_FOUND", `Cannot read tensor "${name}": ${source.reference} has no such tensor`);
  return readEntry(source, entry);
}

/** A tensor's bytes: a ranged read of its file, or a slice of a deflated checkpoint member. */
export async function readEntry(source: Pick<TensorSource, "file">, entry: TensorEntry): Promise<Uint8Array> {
  const file = source.file(entry.file);
  if (entry.member === undefined)
    return readAll(await file.stream({ offset: entry.offset, length: entry.length }));
  const members = await readZip(
    async (offset, length) => readAll(await file.stream({ offset, length })),
    file.size,
    entry.file,
  );
  const member = members.find((m) => m.name === entry.member);
  if (!member)
    throw new OciError("INVALID_CHECKPOINT", `Cannot read ${entry.file}: member ${entry.member} is gone`);
  return member.read(entry.offset, entry.offset + entry.length);
}

/**
 * The metadata of a stored model's GGUF file (its first, for a split model, or `path`): version,
 * alignment, `general.architecture`, the context length, the chat template and every key/value, with
 * arrays (the tokenizer's vocabulary, scores, merges) read on demand by `array(key)`. Reads the header
 * alone. `NOT_FOUND` when the model has no GGUF file.
 *
 * @param source A pulled `Model`, or any `TensorSource`.
 * @param path Which GGUF file (default: the first in load order).
 * @returns The metadata; `INVALID_CHECKPOINT` when the header is not sound.
 */
export async function ggufMetadata(source: TensorSource, path?: string): Promise<GgufMetadata> {
  const target = path ?? source.weights.find((p) => tensorFileKind(p) === "gguf");
  if (target === undefined || !source.files.has(target))
    throw new OciError(
      "NOT_FOUND",
      `Cannot read GGUF metadata: ${source.reference} has no ${path ? `file ${path}` : "GGUF file"}`,
    );
  const file = source.file(target);
  const read = async (offset: number, length: number) => readAll(await file.stream({ offset, length }));
  return (await readGgufHeader(read, file.size, target)).metadata;
}
