import type { CreateHasher } from "../digest/hasher.js";
import { OciError } from "../errors.js";
import type { Descriptor } from "../oci/manifest.js";
import { MediaType } from "../oci/media-types.js";
import type { Reference } from "../reference.js";
import { pushBytes, readJson } from "../store/bytes.js";
import type { BlobRef, FetchOptions, ReadOnlyStore, Store } from "../store/types.js";
import type { ModelFormat } from "./format.js";

export const RECORD_MEDIA_TYPE = "application/vnd.oci-model-loader.model.v1+json";

/** One file of a model: where its bytes are in the store. */
export interface ModelFileInfo {
  /** Its path in the model folder (`config.json`, `model-00001-of-00002.safetensors`). */
  path: string;
  /**
   * The digest of its bytes, stored as a blob of their own; absent for a file served in place from
   * an uncompressed tar layer (`layer`), whose bytes that layer's digest verifies.
   */
  digest?: string;
  /** Its length in bytes. */
  size: number;
  /** The media type of its layer; `application/octet-stream` for a file unpacked from an archive layer. */
  mediaType: string;
  /** A weight file (safetensors, gguf, …), in load order within `Model.weights`. */
  weight: boolean;
  /**
   * Set for a file served in place from an uncompressed tar layer: that layer's blob, and where the
   * file's bytes start in it.
   */
  layer?: { digest: string; size: number; offset: number };
}

/** A file's bytes as a `Blob` over what the store holds (`Store.blob`): its own blob, or its range of a tar layer. */
export function readFileBlob(store: Store, file: ModelFileInfo): Promise<Blob> {
  const offset = file.layer?.offset ?? 0;
  return store.blob(fileBlob(file), { offset, length: file.size });
}

/**
 * The stored blob a file's bytes are in: its own, or the tar layer it is served from.
 *
 * @throws {OciError} `MANIFEST_INVALID` for a record's file that names neither.
 */
export function fileBlob(file: ModelFileInfo): BlobRef {
  if (file.layer) return file.layer;
  if (file.digest === undefined) {
    throw new OciError(
      "MANIFEST_INVALID",
      `Cannot read ${file.path}: the model record gives neither its digest nor the tar layer it is in`,
    );
  }
  return { mediaType: file.mediaType, digest: file.digest, size: file.size };
}

/**
 * A file's bytes from the store, whole or a range: its own blob, or its range of a tar layer.
 *
 * @throws {OciError} `INVALID_ARGUMENT` for a range outside the file; `NOT_FOUND` when its blob is not stored.
 */
export function readFile(
  store: ReadOnlyStore,
  file: ModelFileInfo,
  options: FetchOptions = {},
): Promise<ReadableStream<Uint8Array>> {
  if (!file.layer) return store.fetch(fileBlob(file), options);
  const offset = options.offset ?? 0;
  const length = options.length ?? file.size - offset;
  if (
    !(Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length >= 0) ||
    offset + length > file.size
  ) {
    throw new OciError(
      "INVALID_ARGUMENT",
      `Cannot read ${file.path}: bytes ${offset}+${length} are outside its ${file.size}`,
    );
  }
  return store.fetch(file.layer, { ...options, offset: file.layer.offset + offset, length });
}

/** What the store keeps about a pulled model (the config blob of the record manifest). */
export interface ModelRecord {
  /** The reference it was pulled under, normalised (`docker.io/ai/smollm2:360M`). */
  reference: string;
  /** The digest of its manifest (the one chosen from an index). */
  digest: string;
  /** Its manifest's media type. */
  mediaType: string;
  /** The artifact format, told from the manifest. */
  format: ModelFormat;
  /** The model's OCI config blob. */
  config: Descriptor;
  /** Every file of the model, weights in load order. */
  files: ModelFileInfo[];
  /** Weight layers not stored yet (a config-only pull). */
  pending: Descriptor[];
  /** When it was pulled: an ISO 8601 date-time. */
  pulledAt: string;
  /** Its compressed layers were kept once unpacked (`keepArchives`): other pulls leave them. */
  keptArchives?: boolean;
}

const encoder = new TextEncoder();

/** Tag names under which a model record is found: the reference as given, and pinned to its digest. */
export function recordNames(ref: Reference, digest: string): string[] {
  const pinned = `${ref.registry}/${ref.repository}@${digest}`;
  return ref.digest ? [pinned] : [ref.toString(), pinned];
}

/**
 * Writes a model record as an OCI manifest, so that the store's gc keeps everything it reaches: the
 * record (config), the model's manifest (and through it every layer), and the extracted files.
 */
export async function writeRecord(
  store: Store,
  ref: Reference,
  record: ModelRecord,
  manifest: Descriptor,
  createHasher: CreateHasher,
): Promise<Descriptor> {
  const config = await pushBytes(
    store,
    encoder.encode(JSON.stringify(record)),
    RECORD_MEDIA_TYPE,
    createHasher,
  );
  const files = new Map<string, Descriptor>();
  for (const f of record.files) {
    const { digest, size } = fileBlob(f);
    files.set(digest, { mediaType: f.layer ? "application/octet-stream" : f.mediaType, digest, size });
  }
  files.delete(manifest.digest);
  const body = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType: RECORD_MEDIA_TYPE,
    config,
    layers: [manifest, ...files.values()],
  };
  const descriptor = await pushBytes(
    store,
    encoder.encode(JSON.stringify(body)),
    MediaType.OciManifest,
    createHasher,
  );
  for (const name of recordNames(ref, record.digest)) await store.tag(name, descriptor);
  return descriptor;
}

/** The record a store holds for a reference, or undefined. */
export async function findRecord(store: Store, ref: Reference): Promise<ModelRecord | undefined> {
  const name = ref.digest ? `${ref.registry}/${ref.repository}@${ref.digest}` : ref.toString();
  const descriptor = await store.resolve(name);
  if (!descriptor || !(await store.exists(descriptor))) return undefined;
  const manifest = await readJson<{ config?: Descriptor; artifactType?: string }>(store, descriptor);
  if (manifest.artifactType !== RECORD_MEDIA_TYPE || !manifest.config) {
    throw new OciError(
      "MANIFEST_INVALID",
      `Cannot open ${ref}: the store's entry for it is not a model record`,
    );
  }
  return readJson<ModelRecord>(store, manifest.config);
}

/**
 * The manifest a stored name stands for: a name a pull wrote points at the model's record, whose
 * first layer is the model's own manifest; any other name points at its manifest directly.
 */
export async function namedManifest(store: Store, descriptor: Descriptor): Promise<Descriptor> {
  if (descriptor.mediaType !== MediaType.OciManifest) return descriptor;
  const manifest = await readJson<{ artifactType?: string; layers?: Descriptor[] }>(store, descriptor);
  const model = manifest.layers?.[0];
  return manifest.artifactType === RECORD_MEDIA_TYPE && model ? model : descriptor;
}

/**
 * Whether a model recorded in the store keeps `layer` (it was pulled with `keepArchives` and its
 * manifest names the layer): a pull that unpacked the same layer must then leave it.
 */
export async function keptByRecord(store: Store, layer: string): Promise<boolean> {
  const named = new Map([...(await store.tags()).values()].map((d) => [d.digest, d]));
  for (const descriptor of named.values()) {
    if (descriptor.mediaType !== MediaType.OciManifest) continue;
    const entry = await readJson<{ artifactType?: string; config?: Descriptor; layers?: Descriptor[] }>(
      store,
      descriptor,
    ).catch(() => undefined);
    const model = entry?.layers?.[0];
    if (entry?.artifactType !== RECORD_MEDIA_TYPE || !entry.config || !model) continue;
    const record = await readJson<ModelRecord>(store, entry.config).catch(() => undefined);
    if (!record?.keptArchives) continue;
    const manifest = await readJson<{ layers?: Descriptor[] }>(store, model).catch(() => undefined);
    if (manifest?.layers?.some((l) => l.digest === layer)) return true;
  }
  return false;
}
