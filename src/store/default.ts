import { createIdbStore } from "./idb.js";
import { createMemoryStore } from "./memory.js";
import { createOpfsStore } from "./opfs.js";
import type { Store, StoreOptions } from "./types.js";

/** Default stores made without options, by name: one per name, so every caller shares it. */
const defaults = new Map<string, Store>();

/**
 * The best store this runtime has, by feature detection: OPFS, else IndexedDB, else memory.
 * (In Node, use `createFsStore` from `oci-model-loader/node`.)
 *
 * Without options it returns the same Store for the same name on every call: `pullModel` joins
 * concurrent pulls per Store object, and a memory store made afresh per call would share nothing
 * (neither downloads in flight nor what a pull without a `store` kept for `openModel`). A memory
 * default therefore keeps what is pulled into it for the life of the page or process, like OPFS and
 * IndexedDB keep it on disk; `gc()` and `delete()` free it. With options it makes a new store: the
 * options shape that store, and one caller's hasher or chunk size must not become another's.
 */
export function createDefaultStore(name = "default", options: StoreOptions = {}): Store {
  if (Object.values(options).some((value) => value !== undefined)) return detectStore(name, options);
  let store = defaults.get(name);
  if (!store) {
    store = detectStore(name, options);
    defaults.set(name, store);
  }
  return store;
}

function detectStore(name: string, options: StoreOptions): Store {
  const storage = (globalThis as { navigator?: { storage?: { getDirectory?: unknown } } }).navigator?.storage;
  if (typeof storage?.getDirectory === "function") return createOpfsStore(name, options);
  if (typeof (globalThis as { indexedDB?: unknown }).indexedDB !== "undefined")
    return createIdbStore(name, options);
  return createMemoryStore(options);
}

/**
 * Asks the browser to keep this origin's storage when space runs low (`navigator.storage.persist()`).
 * Resolves false where it is refused or unsupported.
 */
export async function persistStorage(): Promise<boolean> {
  const storage = (globalThis as { navigator?: { storage?: { persist?: () => Promise<boolean> } } }).navigator
    ?.storage;
  return typeof storage?.persist === "function" ? storage.persist().catch(() => false) : false;
}
