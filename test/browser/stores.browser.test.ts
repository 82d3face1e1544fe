import { createCacheStore, createIdbStore, createOpfsStore, type StoreOptions } from "../../src/index.js";
import { storeContract } from "../support/store-contract.js";

const unique = () => `test-${crypto.randomUUID()}`;
const small = (estimate?: StoreOptions["estimate"]): StoreOptions => ({
  chunkSize: 256 * 1024,
  ...(estimate ? { estimate } : {}),
});

storeContract("OPFS", async ({ estimate }) => {
  const name = unique();
  return {
    store: createOpfsStore(name, small(estimate)),
    reopen: async () => createOpfsStore(name, small(estimate)),
  };
});

storeContract("IndexedDB", async ({ estimate }) => {
  const name = unique();
  return {
    store: createIdbStore(name, small(estimate)),
    reopen: async () => createIdbStore(name, small(estimate)),
  };
});

storeContract("Cache API", async ({ estimate }) => {
  const name = unique();
  return {
    store: createCacheStore(name, small(estimate)),
    reopen: async () => createCacheStore(name, small(estimate)),
  };
});
