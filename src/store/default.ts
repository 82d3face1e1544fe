import { createIdbStore } from "./idb.js";
import { createMemoryStore } from "./memory.js";
import { createOpfsStore } from "./opfs.js";
import type { Store, StoreOptions } from "./types.js";

/**
 * The best store this runtime has, by feature detection: OPFS, else IndexedDB, else memory.
 * (In Node, use `createFsStore` from `oci-model-loader/node`.)
 *
 * @param name The store's name (its OPFS folder or IndexedDB database).
 * @param options Passed to the store chosen.
 * @returns The store.
 */
export function createDefaultStore(name = "default", options: StoreOptions = {}): Store {
  const storage = (globalThis as { navigator?: { storage?: { getDirectory?: unknown } } }).navigator?.storage;
  if (typeof storage?.getDirectory === "function") return createOpfsStore(name, options);
  if (typeof (globalThis as { indexedDB?: unknown }).indexedDB !== "undefined")
    return createIdbStore(name, options);
  return createMemoryStore(options);
}

/**
 * Asks the browser to keep this origin's storage when space runs low (`navigator.storage.persist()`).
 *
 * @returns True when storage is persisted; false where it is refused or unsupported.
 */
export async function persistStorage(): Promise<boolean> {
  const storage = (globalThis as { navigator?: { storage?: { persist?: () => Promise<boolean> } } }).navigator
    ?.storage;
  return typeof storage?.persist === "function" ? storage.persist().catch(() => false) : false;
}
