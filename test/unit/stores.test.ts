import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createMemoryStore, type StoreOptions } from "../../src/index.js";
import { fileStream } from "../../src/node/file-stream.js";
import { createFsStore } from "../../src/node/index.js";
import { blobOf, chunked } from "../support/blobs.js";
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

describe("fs store failures", () => {
  it("reports a local file cut short while it is read as STORAGE naming the file, not a network error", async () => {
    const dir = await mkdtemp(join(tmpdir(), "oml-fs-store-"));
    dirs.push(dir);
    const path = join(dir, "model.safetensors");
    await writeFile(path, new Uint8Array(1000));
    const stream = fileStream(path, 0, 5000); // as if the file shrank while it was being packed
    await expect(new Response(stream).arrayBuffer()).rejects.toMatchObject({
      code: "STORAGE",
      message: expect.stringMatching(
        /^Cannot read .*model\.safetensors: the storage failed \(it ended at byte 1000, before 5000\)$/,
      ),
    });
  });

  it("reports a disk it cannot write as STORAGE with the system's reason, not a network error", async () => {
    const dir = await mkdtemp(join(tmpdir(), "oml-fs-store-"));
    dirs.push(dir);
    await writeFile(join(dir, "ingest"), "a file where the ingest folder belongs");
    const { bytes, descriptor } = await blobOf(1000);
    await expect(createFsStore(dir).push(descriptor, chunked(bytes))).rejects.toMatchObject({
      code: "STORAGE",
      message: expect.stringMatching(
        /^Cannot [a-z ]+ sha256:[0-9a-f]{64} in fs:.*: the storage failed \(EEXIST/,
      ),
    });
  });
});
