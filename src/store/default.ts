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
 * Some browsers answer at once (Chromium, by its own heuristics); Firefox asks the user with a
 * prompt, and its promise settles only when they answer — never, headless or when ignored. So this
 * waits at most `timeoutMs` and then answers false (not persisted yet); the request stays open,
 * and a later "Allow" still takes effect (see `navigator.storage.persisted()`).
 *
 * @param options `timeoutMs`: how long to wait for the browser's answer (default 2000).
 * @returns True when storage is persisted; false where it is refused, unsupported or unanswered in time.
 */
export async function persistStorage(options: { timeoutMs?: number } = {}): Promise<boolean> {
  const storage = (globalThis as { navigator?: { storage?: { persist?: () => Promise<boolean> } } }).navigator
    ?.storage;
  if (typeof storage?.persist !== "function") return false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const unanswered = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), options.timeoutMs ?? 2000);
  });
  try {
    return await Promise.race([storage.persist().catch(() => false), unanswered]);
  } finally {
    clearTimeout(timer);
  }
}
