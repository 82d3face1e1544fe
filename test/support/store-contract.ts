// The contract every Store passes, in Node, in Chromium and in workerd: web APIs only here.
import { describe, expect, it } from "vitest";
import type { Descriptor, Store } from "../../src/index.js";
import { blobOf, chunked, countingSource, equal, readAll, sha256, spanSource } from "./blobs.js";
import { failure } from "./failure.js";

export { blobOf, chunked, countingSource, readAll, sha256 };

export interface StoreUnderTest {
  store: Store;
  /** A second store over the same storage (another tab, a restart), when the medium is durable. */
  reopen?: () => Promise<Store>;
}

export type StoreFactory = (options: {
  estimate?: () => Promise<{ usage: number; quota: number }>;
  /** Passed on as `StoreOptions.checkpointBytes` (1: a checkpoint after every chunk). */
  checkpointBytes?: number;
}) => Promise<StoreUnderTest>;

const manifestOf = async (layers: Descriptor[]) => {
  const config = await blobOf(2, "application/vnd.oci.empty.v1+json");
  const bytes = new TextEncoder().encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: config.descriptor,
      layers,
    }),
  );
  return {
    config,
    bytes,
    descriptor: {
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: await sha256(bytes),
      size: bytes.byteLength,
    },
  };
};

/** The shared contract suite. */
export function storeContract(name: string, make: StoreFactory): void {
  describe(`${name} store contract`, () => {
    it("stores a blob verified, reads it whole and by range, and says it has it", async () => {
      const { store } = await make({});
      const { bytes, descriptor } = await blobOf(300_001);
      expect(await store.exists(descriptor)).toBe(false);
      const result = await store.push(descriptor, chunked(bytes));
      expect(result).toEqual({ existed: false, resumedFrom: 0, fetched: 300_001 });
      expect(await store.exists(descriptor)).toBe(true);
      expect(equal(await readAll(await store.fetch(descriptor)), bytes)).toBe(true);
      const part = await readAll(await store.fetch(descriptor, { offset: 100_000, length: 70_000 }));
      expect(equal(part, bytes.subarray(100_000, 170_000))).toBe(true);
      expect(await store.list()).toContainEqual({ digest: descriptor.digest, size: 300_001 });
      expect((await store.usage()).bytes).toBeGreaterThanOrEqual(300_001);
    });

    it("gives a stored blob, or a range of it, as a Blob; NOT_FOUND for one it lacks", async () => {
      const { store } = await make({});
      const { bytes, descriptor } = await blobOf(300_001);
      await store.push(descriptor, chunked(bytes));
      const whole = await store.blob(descriptor);
      expect(whole.size).toBe(300_001);
      expect(equal(new Uint8Array(await whole.arrayBuffer()), bytes)).toBe(true);
      const part = await store.blob(descriptor, { offset: 123_457, length: 70_000 });
      expect(equal(new Uint8Array(await part.arrayBuffer()), bytes.subarray(123_457, 193_457))).toBe(true);
      expect((await failure(store.blob(descriptor, { offset: 300_000, length: 2 }))).code).toBe(
        "INVALID_ARGUMENT",
      );
      const absent = await blobOf(10);
      expect((await failure(store.blob(absent.descriptor))).code).toBe("NOT_FOUND");
    });

    it("stores an empty blob", async () => {
      const { store } = await make({});
      const { descriptor } = await blobOf(0);
      await store.push(descriptor, chunked(new Uint8Array(0)));
      expect(await store.exists(descriptor)).toBe(true);
      expect((await readAll(await store.fetch(descriptor))).byteLength).toBe(0);
      expect(await store.list()).toContainEqual({ digest: descriptor.digest, size: 0 });
    });

    it("is idempotent: a blob already there is not read again", async () => {
      const { store } = await make({});
      const { bytes, descriptor } = await blobOf(1000);
      await store.push(descriptor, chunked(bytes));
      const counting = countingSource(bytes);
      expect(await store.push(descriptor, counting.source)).toEqual({
        existed: true,
        resumedFrom: 0,
        fetched: 0,
      });
      expect(counting.calls).toEqual([]);
    });

    it("refuses a blob with one flipped byte with DIGEST_MISMATCH and keeps nothing of it", async () => {
      const { store } = await make({});
      const { bytes, descriptor } = await blobOf(200_000);
      const bad = bytes.slice();
      bad[123_456] = (bad[123_456] ?? 0) ^ 1;
      expect((await failure(store.push(descriptor, chunked(bad)))).code).toBe("DIGEST_MISMATCH");
      expect(await store.exists(descriptor)).toBe(false);
      expect((await failure(store.fetch(descriptor))).code).toBe("NOT_FOUND");
      expect((await store.usage()).ingestBytes).toBe(0);
      // and the right bytes still go in afterwards
      await store.push(descriptor, chunked(bytes));
      expect(await store.exists(descriptor)).toBe(true);
    });

    it("refuses a source longer than the descriptor with SIZE_MISMATCH", async () => {
      const { store } = await make({});
      const { bytes, descriptor } = await blobOf(10_000);
      const longer = new Uint8Array(10_001);
      longer.set(bytes);
      expect((await failure(store.push(descriptor, chunked(longer)))).code).toBe("SIZE_MISMATCH");
      expect(await store.exists(descriptor)).toBe(false);
    });

    it("leaves nothing a later push could resume from when a source runs past its size", async () => {
      // The failed push's last write and checkpoint were still running when it threw its ingest
      // away; the checkpoint then outlived the bytes it covered and the next honest push of the
      // digest resumed from it, committing a blob with a hole that "matched" its digest.
      const { store } = await make({ checkpointBytes: 1 });
      const { bytes, descriptor } = await blobOf(2 * 1024 * 1024);
      const longer = new Uint8Array(bytes.byteLength + 1);
      longer.set(bytes);
      expect((await failure(store.push(descriptor, chunked(longer)))).code).toBe("SIZE_MISMATCH");
      await store.push(descriptor, chunked(bytes));
      expect(equal(await readAll(await store.fetch(descriptor)), bytes)).toBe(true);
    });

    it("resumes a push cut off half-way, reading only the missing bytes", async () => {
      const { store, reopen } = await make({});
      const { bytes, descriptor } = await blobOf(3 * 1024 * 1024 + 5);
      const cut = countingSource(bytes, 2 * 1024 * 1024 + 77);
      const error = await failure(store.push(descriptor, cut.source));
      expect(error.code).toBe("NETWORK");
      expect(await store.exists(descriptor)).toBe(false);
      const again = reopen ? await reopen() : store;
      const rest = countingSource(bytes);
      const result = await again.push(descriptor, rest.source);
      expect(result.resumedFrom).toBeGreaterThan(0);
      expect(rest.calls).toEqual([result.resumedFrom]);
      expect(rest.served()).toBe(bytes.byteLength - result.resumedFrom);
      expect(cut.served() + rest.served()).toBeLessThanOrEqual(bytes.byteLength + 64 * 1024);
      expect(equal(await readAll(await again.fetch(descriptor)), bytes)).toBe(true);
    });

    it("stores ranges that arrive side by side, each written where it belongs", async () => {
      const { store } = await make({});
      const { bytes, descriptor } = await blobOf(3 * 1024 * 1024 + 5);
      const ranged = spanSource(bytes);
      const result = await store.push(descriptor, ranged.source);
      expect(result).toMatchObject({ existed: false, resumedFrom: 0, fetched: bytes.byteLength });
      expect(ranged.asked).toEqual([[[0, bytes.byteLength]]]);
      expect(ranged.served()).toBe(bytes.byteLength);
      expect(equal(await readAll(await store.fetch(descriptor)), bytes)).toBe(true);
    });

    it("stores an empty blob from a range source, asking it nothing in ranges", async () => {
      const { store } = await make({});
      const { bytes, descriptor } = await blobOf(0);
      const ranged = spanSource(bytes);
      expect((await store.push(descriptor, ranged.source)).existed).toBe(false);
      expect(ranged.asked).toEqual([]);
      expect((await readAll(await store.fetch(descriptor))).byteLength).toBe(0);
    });

    it("resumes ranges cut off side by side: the next push asks only for the holes", async () => {
      const { store, reopen } = await make({ checkpointBytes: 1 });
      const { bytes, descriptor } = await blobOf(3 * 1024 * 1024 + 5);
      const cut = spanSource(bytes, { failAfter: 2 * 1024 * 1024 + 77 });
      expect((await failure(store.push(descriptor, cut.source))).code).toBe("NETWORK");
      expect(await store.exists(descriptor)).toBe(false);
      const again = reopen ? await reopen() : store;
      // What it holds: the prefix and every range that landed past it.
      expect((await again.usage()).ingestBytes).toBe(cut.served());
      const rest = spanSource(bytes);
      const result = await again.push(descriptor, rest.source);
      // Ranges past the first landed too: what is left is several holes, not one rest.
      const holes = rest.asked[0] ?? [];
      expect(holes.length).toBeGreaterThan(1);
      expect(result.resumedFrom).toBe(cut.served());
      // Not a byte fetched twice.
      expect(cut.served() + rest.served()).toBe(bytes.byteLength);
      expect(holes.reduce((n, [start, end]) => n + end - start, 0)).toBe(rest.served());
      expect(equal(await readAll(await again.fetch(descriptor)), bytes)).toBe(true);
    });

    it("refuses a range source with a flipped byte with DIGEST_MISMATCH and keeps nothing of it", async () => {
      const { store } = await make({ checkpointBytes: 1 });
      const { bytes, descriptor } = await blobOf(1024 * 1024);
      const bad = bytes.slice();
      bad[700_000] = (bad[700_000] as number) ^ 1;
      expect((await failure(store.push(descriptor, spanSource(bad).source))).code).toBe("DIGEST_MISMATCH");
      expect(await store.exists(descriptor)).toBe(false);
      const honest = spanSource(bytes);
      expect((await store.push(descriptor, honest.source)).resumedFrom).toBe(0);
      expect(honest.served()).toBe(bytes.byteLength);
    });

    it("refuses bytes a range source was not asked for with SIZE_MISMATCH and keeps nothing to resume from", async () => {
      const { store } = await make({ checkpointBytes: 1 });
      const { bytes, descriptor } = await blobOf(1024 * 1024);
      for (const piece of [
        { offset: 0, bytes: bytes.slice(0, 10) }, // again
        { offset: bytes.byteLength - 5, bytes: new Uint8Array(10) }, // past the end
      ]) {
        const stray = spanSource(bytes, { stray: { after: 600_000, piece } });
        expect((await failure(store.push(descriptor, stray.source))).code).toBe("SIZE_MISMATCH");
        expect(await store.exists(descriptor)).toBe(false);
        const honest = spanSource(bytes);
        expect((await store.push(descriptor, honest.source)).resumedFrom).toBe(0);
        await store.delete(descriptor);
      }
    });

    it("stops with ABORTED and resumes later", async () => {
      const { store } = await make({});
      const { bytes, descriptor } = await blobOf(1024 * 1024);
      const controller = new AbortController();
      const pending = store.push(descriptor, chunked(bytes, { chunk: 16 * 1024 }), {
        signal: controller.signal,
        onProgress: (n) => {
          if (n > 500_000) controller.abort();
        },
      });
      expect((await failure(pending)).code).toBe("ABORTED");
      expect(await store.exists(descriptor)).toBe(false);
      await store.push(descriptor, chunked(bytes));
      expect(equal(await readAll(await store.fetch(descriptor)), bytes)).toBe(true);
    });

    it("reads a blob once when two pushes of it run at the same time", async () => {
      const { store } = await make({});
      const { bytes, descriptor } = await blobOf(500_000);
      const counting = countingSource(bytes);
      const results = await Promise.all([
        store.push(descriptor, counting.source),
        store.push(descriptor, counting.source),
      ]);
      expect(counting.calls).toEqual([0]);
      expect(results.map((r) => r.existed).sort()).toEqual([false, true]);
    });

    it("refuses with QUOTA_EXCEEDED before reading a byte when the blob will not fit", async () => {
      const { store } = await make({ estimate: async () => ({ usage: 900, quota: 1000 }) });
      const { bytes, descriptor } = await blobOf(5000);
      const counting = countingSource(bytes);
      const error = await failure(store.push(descriptor, counting.source));
      expect(error.code).toBe("QUOTA_EXCEEDED");
      expect(error.message).toMatch(/needs/);
      expect(counting.calls).toEqual([]);
    });

    it("names descriptors, and gc keeps what a name reaches, shared blobs included", async () => {
      const { store } = await make({});
      const shared = await blobOf(1000);
      const onlyA = await blobOf(1001);
      const onlyB = await blobOf(1002);
      const stray = await blobOf(1003);
      const a = await manifestOf([shared.descriptor, onlyA.descriptor]);
      const b = await manifestOf([shared.descriptor, onlyB.descriptor]);
      for (const blob of [shared, onlyA, onlyB, stray, a.config, b.config])
        await store.push(blob.descriptor, chunked(blob.bytes));
      for (const m of [a, b]) await store.push(m.descriptor, chunked(m.bytes));
      await store.tag("model-a", a.descriptor);
      await store.tag("model-b", b.descriptor);
      expect(await store.resolve("model-a")).toEqual(a.descriptor);
      expect([...(await store.tags()).keys()].sort()).toEqual(["model-a", "model-b"]);

      const first = await store.gc();
      expect(first.removedBlobs).toEqual([stray.descriptor.digest]);
      await store.untag("model-a");
      expect(await store.resolve("model-a")).toBeUndefined();
      const second = await store.gc();
      expect(second.removedBlobs.sort()).toEqual(
        [a.descriptor.digest, a.config.descriptor.digest, onlyA.descriptor.digest].sort(),
      );
      for (const kept of [shared, onlyB, b.config]) expect(await store.exists(kept.descriptor)).toBe(true);
      expect(await store.exists(b.descriptor)).toBe(true);
    });

    it("gc removes stale ingests", async () => {
      const { store } = await make({});
      const { bytes, descriptor } = await blobOf(200_000);
      await failure(store.push(descriptor, countingSource(bytes, 100_000).source));
      expect((await store.usage()).ingestBytes).toBeGreaterThan(0);
      const result = await store.gc({ ingestMaxAgeMs: -1 });
      expect(result.removedIngests).toEqual([descriptor.digest]);
      expect((await store.usage()).ingestBytes).toBe(0);
    });

    it("verify re-hashes every blob and removes none while all match", async () => {
      const { store } = await make({});
      for (const size of [0, 1000, 300_001]) {
        const { bytes, descriptor } = await blobOf(size);
        await store.push(descriptor, chunked(bytes));
      }
      const progress: number[] = [];
      const result = await store.verify({ onProgress: (bytes) => progress.push(bytes) });
      expect(result).toEqual({ checked: 3, bytes: 301_001, removed: [] });
      expect(progress.at(-1)).toBe(301_001);
      expect(await store.list()).toHaveLength(3);
    });

    it("deletes a blob", async () => {
      const { store } = await make({});
      const { bytes, descriptor } = await blobOf(10);
      await store.push(descriptor, chunked(bytes));
      await store.delete(descriptor);
      expect(await store.exists(descriptor)).toBe(false);
    });
  });
}
