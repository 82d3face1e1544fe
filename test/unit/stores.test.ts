import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { createMemoryStore } from "../../src/index.js";
import { createFsStore } from "../../src/node/index.js";
import { storeContract } from "../support/store-contract.js";

storeContract("memory", async ({ estimate }) => ({
  store: createMemoryStore({ chunkSize: 256 * 1024, ...(estimate ? { estimate } : {}) }),
}));

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

storeContract("fs (OCI layout)", async ({ estimate }) => {
  const dir = await mkdtemp(join(tmpdir(), "oml-fs-store-"));
  dirs.push(dir);
  const options = { chunkSize: 256 * 1024, ...(estimate ? { estimate } : {}) };
  return { store: createFsStore(dir, options), reopen: async () => createFsStore(dir, options) };
});
