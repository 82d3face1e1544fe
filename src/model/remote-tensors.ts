import { OciError } from "../errors.js";
import { parseReference, type Reference } from "../reference.js";
import { createRegistryClient, type RegistryClient, type RegistryClientOptions } from "../registry/client.js";
import { readAll } from "../streams.js";
import { isIndexedTensorFile, tensorFileKind } from "../tensors/files.js";
import { type GgufMetadata, readGgufHeader } from "../tensors/gguf.js";
import { buildTensorIndex } from "../tensors/tensor-index.js";
import type { TensorEntry, TensorFile } from "../tensors/types.js";
import { type PlannedLayer, planLayers } from "./layers.js";

/** How `remoteTensorIndex` and `remoteGgufMetadata` reach the registry: its options or a client, and an abort signal. */
export type RemoteTensorOptions = RegistryClientOptions & { client?: RegistryClient; signal?: AbortSignal };

/** Options of `remoteTensorIndex`. */
export type RemoteTensorIndexOptions = RemoteTensorOptions & {
  /** Filled with each GGUF file's metadata, by path, from the same header bytes (no more requests). */
  ggufMetadata?: Map<string, GgufMetadata>;
};

/**
 * The tensor index of a model in a registry, from header bytes fetched with `Range`: no weights are
 * downloaded.
 *
 * @param reference The model in the registry.
 * @param options How to reach the registry (or a client to reuse), an abort signal, and a map to
 *   fill with GGUF files' metadata.
 * @returns Tensor name → file, dtype, shape, offset and length.
 */
export async function remoteTensorIndex(
  reference: string | Reference,
  options: RemoteTensorIndexOptions = {},
): Promise<Map<string, TensorEntry>> {
  const ref = typeof reference === "string" ? parseReference(reference) : reference;
  return buildTensorIndex(await remoteTensorFiles(ref, options), undefined, options.ggufMetadata);
}

/** The tensor files of a model in a registry, read by `Range`. */
async function remoteTensorFiles(ref: Reference, options: RemoteTensorOptions): Promise<TensorFile[]> {
  const client = options.client ?? createRegistryClient(options);
  const signal = options.signal ? { signal: options.signal } : {};
  const { manifest } = await client.getManifest(ref, signal);
  // An Ollama tensor layer whose name is no safe path is named by its digest, as the pull names it.
  const pathOf = (l: PlannedLayer) =>
    l.path ?? (l.modelWeight ? l.descriptor.digest.replace(":", "-") : undefined);
  return planLayers(manifest)
    .filter((l) => {
      const path = pathOf(l);
      // A compressed layer has no byte ranges to read: its file is indexed once pulled.
      return (
        !l.archive &&
        !l.compression &&
        path !== undefined &&
        isIndexedTensorFile(path, l.descriptor.mediaType)
      );
    })
    .map(
      (l): TensorFile => ({
        path: pathOf(l) as string,
        size: l.descriptor.size,
        mediaType: l.descriptor.mediaType,
        read: async (offset, length) =>
          readAll(await client.fetchBlobRange(ref, l.descriptor, { offset, length, ...signal })),
      }),
    );
}

/**
 * The metadata of a GGUF model in a registry (its first GGUF file's): version, alignment,
 * `general.architecture`, context length, chat template, every key/value. Only header bytes are
 * fetched, with `Range`; `array(key)` fetches an array's bytes when asked. `NOT_FOUND` when the model
 * has no GGUF file.
 *
 * @param reference The model in the registry.
 * @param options How to reach the registry (or a client to reuse), and an abort signal.
 * @returns The metadata; `INVALID_CHECKPOINT` when the header is not sound.
 */
export async function remoteGgufMetadata(
  reference: string | Reference,
  options: RemoteTensorOptions = {},
): Promise<GgufMetadata> {
  const ref = typeof reference === "string" ? parseReference(reference) : reference;
  const file = (await remoteTensorFiles(ref, options)).find((f) => tensorFileKind(f.path) === "gguf");
  if (!file) throw new OciError("NOT_FOUND", `Cannot read GGUF metadata: ${ref} has no GGUF file`);
  return (await readGgufHeader((offset, length) => file.read(offset, length), file.size, file.path)).metadata;
}
