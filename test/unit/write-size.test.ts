// Both disk-backed stores hand the kernel at most 1 MiB per write call: larger calls were slower and
// erratic under Linux 6.18 (see MAX_WRITE in src/node/fs-store.ts).
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createFsStore } from "../../src/node/index.js";
import { syncFileServer } from "../../src/store/opfs-sync.js";
import { blobOf, chunked } from "../support/blobs.js";

const MiB = 1024 * 1024;

describe("write calls are at most 1 MiB", () => {
  afterEach(() => vi.restoreAllMocks());

  it("fs store, with 8 MiB chunks", async () => {
    const dir = await mkdtemp(join(tmpdir(), "oml-write-size-"));
    try {
      const probe = await open(join(dir, "probe"), "w");
      const fileHandle = Object.getPrototypeOf(probe) as { write: (...args: unknown[]) => unknown };
      await probe.close();
      const lengths: number[] = [];
      const write = fileHandle.write;
      vi.spyOn(fileHandle, "write").mockImplementation(function (this: unknown, ...args: unknown[]) {
        if (args[0] instanceof Uint8Array) lengths.push(Number(args[2] ?? args[0].byteLength));
        return write.apply(this, args);
      });
      const { bytes, descriptor } = await blobOf(8 * MiB + 5);
      await createFsStore(dir, { chunkSize: 8 * MiB }).push(descriptor, chunked(bytes, { chunk: 3 * MiB }));
      expect(lengths.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(bytes.byteLength);
      expect(Math.max(...lengths)).toBe(MiB);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("OPFS writer (sync access handles)", async () => {
    const calls: [number, number][] = [];
    const handle = {
      write: (bytes: Uint8Array, { at }: { at: number }) => {
        calls.push([at, bytes.byteLength]);
        return bytes.byteLength;
      },
      truncate: () => {},
      flush: () => {},
      close: () => {},
    };
    const file = { createSyncAccessHandle: async () => handle } as unknown as FileSystemFileHandle;
    const run = syncFileServer();
    await run({ kind: "open", key: "k", file, size: 0 });
    await run({ kind: "write", key: "k", at: 10, bytes: new Uint8Array(2.5 * MiB) });
    expect(calls).toEqual([
      [10, MiB],
      [10 + MiB, MiB],
      [10 + 2 * MiB, 0.5 * MiB],
    ]);
  });
});
