import { createIdbStore } from "./idb.js";
import { createMemoryStore } from "./memory.js";
import { createOpfsStore } from "./opfs.js";
import type { Store, StoreOptions } from "./types.js";

/**
 * The best store this runtime has, by feature detection: OPFS, else IndexedDB, else memory.
 * (In Node, use `createFsStore` from `oci-model-loader/node`.)
 */
export function createDefaultStore(name = "default", options: StoreOptions = {}): Store {
  const storage = (globalThis as { navigator?: { storage?: { getDirectory?: unknown } } }).navigator?.storage;
  if (typeof storage?.getDirectory === "function") return createOpfsStore(name, options);
  if (typeof (globalThis as { indexedDB?: unknown }).indexedDB !== "undefined")
    return createIdbStore(name, options);
  return createMemoryStore(options);
}
