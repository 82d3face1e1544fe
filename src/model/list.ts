import { parseReference, type Reference } from "../reference.js";
import { readJson } from "../store/bytes.js";
import type { Store } from "../store/types.js";
import { findRecord, type ModelRecord, RECORD_MEDIA_TYPE, recordNames } from "./record.js";

/** A model held in a store, as `listModels` tells it. */
export interface StoredModel {
  /** The names it can be opened by (the reference pulled, and it pinned to its digest). */
  names: string[];
  /** What the store keeps about it: reference, manifest digest, format, files. */
  record: ModelRecord;
  /** Bytes of its files. */
  size: number;
}

/**
 * Every model in a store.
 *
 * @param store The store to list.
 * @returns Each model recorded in it.
 */
export async function listModels(store: Store): Promise<StoredModel[]> {
  const byRecord = new Map<string, StoredModel>();
  for (const [name, descriptor] of await store.tags()) {
    const known = byRecord.get(descriptor.digest);
    if (known) {
      known.names.push(name);
      continue;
    }
    if (!(await store.exists(descriptor))) continue;
    const manifest = await readJson<{ artifactType?: string; config?: { digest: string; size: number } }>(
      store,
      descriptor,
    ).catch(() => undefined);
    if (manifest?.artifactType !== RECORD_MEDIA_TYPE || !manifest.config) continue;
    const record = await readJson<ModelRecord>(store, manifest.config);
    byRecord.set(descriptor.digest, {
      names: [name],
      record,
      size: record.files.reduce((n, f) => n + f.size, 0),
    });
  }
  return [...byRecord.values()];
}

/**
 * Forgets a model: its names go, then `gc` frees every blob no other model needs.
 *
 * @param reference The reference the model was pulled under.
 * @param options The store, and `gc: false` to keep the blobs for a later `gc()`.
 * @returns True when the model was removed, false when the store did not have it.
 */
export async function removeModel(
  reference: string | Reference,
  options: { store: Store; gc?: boolean },
): Promise<boolean> {
  const ref = typeof reference === "string" ? parseReference(reference) : reference;
  const { store } = options;
  const record = await findRecord(store, ref);
  if (!record) return false;
  const names = new Set(recordNames(ref, record.digest));
  names.add(record.reference);
  for (const name of names) await store.untag(name);
  if (options.gc ?? true) await store.gc();
  return true;
}
