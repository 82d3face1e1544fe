import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { createMemoryStore, type StoreOptions } from "../../src/index.js";
import { createFsStore } from "../../src/node/index.js";
import { type StoreFactory, storeContract } from "../support/store-contract.js";

const small = ({ estimate, checkpointBytes }: Parameters<StoreFactory>[0]): StoreOptions => ({
  chunkSize: 256 * 1024,
  ...(estimate ? { estimate } : {}),
  ...(checkpointBytes ? { checkpointBytes } : {}),
});

storeContract("memory", async (options) => ({ store: createMemoryStore(small(options)) }));

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

storeContract("fs (OCI layout)", async (options) => {
  const dir = await mkdtemp(join(tmpdir(), "oml-fs-store-"));
  dirs.push(dir);
  return {
    store: createFsStore(dir, small(options)),
    reopen: async () => createFsStore(dir, small(options)),
  };
});
