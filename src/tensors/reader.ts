import { OciError } from "../errors.js";
import { planLayers } from "../model/layers.js";
import type { Model } from "../model/model.js";
import { parseReference, type Reference } from "../reference.js";
import { createRegistryClient, type RegistryClient, type RegistryClientOptions } from "../registry/client.js";
import { isCheckpointPath } from "./checkpoint.js";
import type { Dtype } from "./safetensors.js";
import { buildTensorIndex, readBytes, type TensorEntry, type TensorFile } from "./tensor-index.js";
import { readZip } from "./zip.js";

/** A tensor as the iterator yields it. */
export interface Tensor {
  name: string;
  file: string;
  dtype: Dtype;
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

const isSafetensors = (path: string) => path.endsWith(".safetensors");
const isTensorFile = (path: string) => isSafetensors(path) || isCheckpointPath(path);

function modelFiles(model: Model): TensorFile[] {
  return model.weights.filter(isTensorFile).map((path) => {
    const file = model.file(path);
    return {
      path,
      size: file.size,
      read: async (offset, length) => readBytes(await file.stream({ offset, length })),
    };
  });
}

/** The largest `model.safetensors.index.json` read whole: the biggest models' are some 10 MiB. */
const WEIGHT_MAP_LIMIT = 64 * 1024 * 1024;

async function weightMap(model: Model): Promise<Record<string, string> | undefined> {
  const path = [...model.files.keys()].find((p) => p.endsWith("model.safetensors.index.json"));
  if (!path) return undefined;
  const file = model.file(path);
  if (file.size > WEIGHT_MAP_LIMIT) {
    throw new OciError(
      "UNSUPPORTED_ARTIFACT",
      `Cannot index ${model.reference}: its ${path} is ${file.size} bytes, over the ${WEIGHT_MAP_LIMIT}-byte limit`,
    );
  }
  const json = await file.json<{ weight_map?: Record<string, string> }>();
  return json.weight_map;
}

/** The tensor index of a stored model: name → file, dtype, shape, offset, length. */
export async function tensorIndex(model: Model): Promise<Map<string, TensorEntry>> {
  return buildTensorIndex(modelFiles(model), await weightMap(model));
}

/**
 * The tensor index of a model in a registry, from header bytes fetched with `Range`: no weights are
 * downloaded.
 */
export async function remoteTensorIndex(
  reference: string | Reference,
  options: RegistryClientOptions & { client?: RegistryClient; signal?: AbortSignal } = {},
): Promise<Map<string, TensorEntry>> {
  const ref = typeof reference === "string" ? parseReference(reference) : reference;
  const client = options.client ?? createRegistryClient(options);
  const signal = options.signal ? { signal: options.signal } : {};
  const { manifest } = await client.getManifest(ref, signal);
  const files = planLayers(manifest)
    .filter((l) => !l.archive && l.path !== undefined && isTensorFile(l.path))
    .map(
      (l): TensorFile => ({
        path: l.path as string,
        size: l.descriptor.size,
        read: async (offset, length) =>
          readBytes(await client.fetchBlobRange(ref, l.descriptor, { offset, length, ...signal })),
      }),
    );
  return buildTensorIndex(files);
}

/**
 * Every tensor of a stored model, file by file in load order and by offset within a file, each file
 * read once, sequentially (vLLM's weights iterator). Call `data()` before moving on.
 */
export async function* iterateTensors(model: Model): AsyncGenerator<Tensor> {
  const index = await tensorIndex(model);
  for (const path of model.weights.filter(isTensorFile)) {
    const entries = [...index.values()].filter((t) => t.file === path);
    if (entries.length === 0) continue;
    if (!isSafetensors(path)) {
      // Checkpoint tensors may share storage or sit in deflated members: read each by itself.
      for (const entry of entries) {
        const bytes = await readEntry(model, entry);
        yield tensorOf(entry, bytes);
      }
      continue;
    }
    const start = entries[0]?.offset ?? 0;
    const reader = (await model.file(path).stream({ offset: start })).getReader();
    let pending: Uint8Array = new Uint8Array(0);
    const take = async (length: number): Promise<Uint8Array> => {
      const out = new Uint8Array(length);
      let filled = 0;
      while (filled < length) {
        if (pending.byteLength === 0) {
          const { done, value } = await reader.read();
          if (done)
            throw new OciError("INVALID_SAFETENSORS", `Cannot read ${path}: it ended before its last tensor`);
          pending = value;
        }
        const n = Math.min(length - filled, pending.byteLength);
        out.set(pending.subarray(0, n), filled);
        pending = pending.subarray(n);
        filled += n;
      }
      return out;
    };
    try {
      for (const entry of entries) {
        const bytes = await take(entry.length);
        yield tensorOf(entry, bytes);
      }
    } finally {
      await reader.cancel().catch(() => {});
    }
  }
}

/** One tensor's bytes, by a ranged read. `NOT_FOUND` when the model has no such tensor. */
export async function readTensor(
  model: Model,
  name: string,
  index?: Map<string, TensorEntry>,
): Promise<Uint8Array> {
  const entry = (index ?? (await tensorIndex(model))).get(name);
  if (!entry)
    throw new OciError("NOT_FOUND", `Cannot read tensor "${name}": ${model.reference} has no such tensor`);
  return readEntry(model, entry);
}

/** A tensor's bytes: a ranged read of its file, or a slice of a deflated checkpoint member. */
export async function readEntry(model: Model, entry: TensorEntry): Promise<Uint8Array> {
  const file = model.file(entry.file);
  if (entry.member === undefined)
    return readBytes(await file.stream({ offset: entry.offset, length: entry.length }));
  const members = await readZip(
    async (offset, length) => readBytes(await file.stream({ offset, length })),
    file.size,
    entry.file,
  );
  const member = members.find((m) => m.name === entry.member);
  if (!member)
    throw new OciError("INVALID_CHECKPOINT", `Cannot read ${entry.file}: member ${entry.member} is gone`);
  return member.read(entry.offset, entry.offset + entry.length);
}
