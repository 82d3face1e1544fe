import { afterEach, describe, expect, it } from "vitest";
import { createDefaultStore, persistStorage } from "../../src/index.js";
import { blobOf, chunked } from "../support/blobs.js";

/** Properties a test replaced, put back after each test whatever happened. */
const restores: (() => void)[] = [];
afterEach(() => {
  for (const restore of restores.splice(0).reverse()) restore();
});

/** Replaces `key` where `target` finds it (own property or on its prototype chain) by `value`, until the test ends. */
function replace(target: object, key: string, value: unknown): void {
  let owner: object | null = target;
  while (owner && !Object.hasOwn(owner, key)) owner = Object.getPrototypeOf(owner);
  if (!owner) throw new Error(`${key} is not there to replace`);
  const original = Object.getOwnPropertyDescriptor(owner, key) as PropertyDescriptor;
  const at = owner;
  Object.defineProperty(at, key, { value, configurable: true, writable: true });
  restores.push(() => Object.defineProperty(at, key, original));
}

const unique = () => `default-${crypto.randomUUID()}`;

/** Where a store named `name` put its bytes: OPFS, IndexedDB or the Cache API (none: memory). */
async function media(name: string): Promise<string[]> {
  const found: string[] = [];
  const root = await navigator.storage.getDirectory();
  const top = await root.getDirectoryHandle("oci-model-loader").catch(() => undefined);
  if (top && (await top.getDirectoryHandle(name).catch(() => undefined))) found.push("opfs");
  if ((await indexedDB.databases()).some((db) => db.name === `oci-model-loader:${name}`)) found.push("idb");
  if (await caches.has(name)) found.push("cache");
  return found;
}

async function pushOne(name: string) {
  const store = createDefaultStore(name);
  const { bytes, descriptor } = await blobOf(10_000);
  await store.push(descriptor, chunked(bytes));
  return { store, descriptor };
}

describe("createDefaultStore in Chromium picks by feature detection", () => {
  it("OPFS when navigator.storage.getDirectory is there", async () => {
    expect(typeof navigator.storage.getDirectory).toBe("function");
    const name = unique();
    const { store, descriptor } = await pushOne(name);
    expect(await media(name)).toEqual(["opfs"]);
    // Durable: a second default store of the same name sees the blob.
    expect(await createDefaultStore(name).exists(descriptor)).toBe(true);
    expect(await store.exists(descriptor)).toBe(true);
  });

  it("IndexedDB when getDirectory is hidden", async () => {
    const name = unique();
    replace(navigator.storage, "getDirectory", undefined);
    const store = createDefaultStore(name);
    const { bytes, descriptor } = await blobOf(10_000);
    await store.push(descriptor, chunked(bytes));
    expect(await createDefaultStore(name).exists(descriptor)).toBe(true);
    for (const restore of restores.splice(0).reverse()) restore();
    expect(await media(name)).toEqual(["idb"]);
  });

  it("memory when neither OPFS nor IndexedDB is there", async () => {
    const name = unique();
    replace(navigator.storage, "getDirectory", undefined);
    replace(globalThis, "indexedDB", undefined);
    expect(typeof indexedDB).toBe("undefined");
    const store = createDefaultStore(name);
    const { bytes, descriptor } = await blobOf(10_000);
    await store.push(descriptor, chunked(bytes));
    expect(await store.exists(descriptor)).toBe(true);
    // Not durable: another default store of the same name has nothing.
    expect(await createDefaultStore(name).exists(descriptor)).toBe(false);
    for (const restore of restores.splice(0).reverse()) restore();
    expect(await media(name)).toEqual([]);
  });
});

describe("persistStorage", () => {
  it("gives Chromium's own answer", async () => {
    const answer = await navigator.storage.persist();
    expect(typeof answer).toBe("boolean");
    expect(await persistStorage()).toBe(answer);
  });

  it("true when the browser grants it, false when it refuses or throws", async () => {
    let calls = 0;
    replace(navigator.storage, "persist", async () => {
      calls++;
      return true;
    });
    expect(await persistStorage()).toBe(true);
    replace(navigator.storage, "persist", async () => {
      calls++;
      return false;
    });
    expect(await persistStorage()).toBe(false);
    replace(navigator.storage, "persist", async () => {
      calls++;
      throw new DOMException("refused", "InvalidStateError");
    });
    expect(await persistStorage()).toBe(false);
    expect(calls).toBe(3);
  });

  it("false where it is unsupported: no persist(), no navigator.storage", async () => {
    replace(navigator.storage, "persist", undefined);
    expect(await persistStorage()).toBe(false);
    for (const restore of restores.splice(0).reverse()) restore();
    replace(navigator, "storage", undefined);
    expect(navigator.storage).toBeUndefined();
    expect(await persistStorage()).toBe(false);
  });
});
