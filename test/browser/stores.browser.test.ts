import { createCacheStore, createIdbStore, createOpfsStore, type StoreOptions } from "../../src/index.js";
import { type StoreFactory, storeContract } from "../support/store-contract.js";

const unique = () => `test-${crypto.randomUUID()}`;
const small = ({ estimate, checkpointBytes }: Parameters<StoreFactory>[0]): StoreOptions => ({
  chunkSize: 256 * 1024,
  ...(estimate ? { estimate } : {}),
  ...(checkpointBytes ? { checkpointBytes } : {}),
});

storeContract("OPFS", async (options) => {
  const name = unique();
  return {
    store: createOpfsStore(name, small(options)),
    reopen: async () => createOpfsStore(name, small(options)),
  };
});

storeContract("IndexedDB", async (options) => {
  const name = unique();
  return {
    store: createIdbStore(name, small(options)),
    reopen: async () => createIdbStore(name, small(options)),
  };
});

storeContract("Cache API", async (options) => {
  const name = unique();
  return {
    store: createCacheStore(name, small(options)),
    reopen: async () => createCacheStore(name, small(options)),
  };
});
