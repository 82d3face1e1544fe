import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pushWithSkopeo } from "../support/layout.js";
import { dockerV01 } from "../support/models.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";
import { startWorker } from "../support/workerd.js";

describe("the Cache API store inside workerd", () => {
  it("stores verified, refuses a flipped byte, and resumes a cut push from where it stopped", async () => {
    const mf = await startWorker(join(import.meta.dirname, "store-worker.ts"), { cache: true });
    try {
      const report = (await (await mf.dispatchFetch("http://worker/")).json()) as Record<string, unknown>;
      expect(report).toMatchObject({
        roundTrip: true,
        range: true,
        flipped: "DIGEST_MISMATCH",
        flippedVisible: false,
        cut: "NETWORK",
        resumedEqual: true,
      });
      expect(report.resumedFrom).toBeGreaterThan(0);
      expect(report.restCalls).toEqual([report.resumedFrom]);
      expect(report.servedTotal).toBeLessThanOrEqual((report.size as number) + 64 * 1024);
    } finally {
      await mf.dispose();
    }
  });
});

describe("pullModel inside workerd", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ redirectBlobs: true });
  });
  afterAll(() => registry?.stop());

  it("pulls a v0.1 model from the real registry into a Cache API store, then reuses it", async () => {
    const fixture = await dockerV01();
    await pushWithSkopeo(registry, fixture.artifact, "models/tiny", "v1");
    const mf = await startWorker(join(import.meta.dirname, "pull-worker.ts"), { cache: true });
    try {
      const url = `http://worker/?ref=${encodeURIComponent(`${registry.host}/models/tiny:v1`)}`;
      registry.blobPaths.length = 0;
      const report = (await (await mf.dispatchFetch(url)).json()) as Record<string, unknown>;
      expect(report.code, String(report.message)).toBeUndefined();
      expect(report).toMatchObject({
        digest: fixture.artifact.descriptor.digest,
        format: "docker-v0.1",
        config: { hidden_size: 8 },
      });
      expect(report.sizes).toEqual(
        Object.fromEntries(Object.entries(fixture.files).map(([p, b]) => [p, b.byteLength])),
      );
      expect(registry.blobPaths).toHaveLength(fixture.artifact.blobs.size);
      registry.blobPaths.length = 0;
      const again = (await (await mf.dispatchFetch(url)).json()) as Record<string, unknown>;
      expect(again.digest).toBe(fixture.artifact.descriptor.digest);
      expect(registry.blobPaths).toEqual([]);
    } finally {
      await mf.dispose();
    }
  });

  it("pulls a large blob in parallel ranges, each byte once, verified into the Cache API store", async () => {
    const shard = new Uint8Array(1024 * 1024 + 7);
    for (let i = 0; i < shard.length; i += 97) shard[i] = i & 0xff;
    const fixture = await dockerV01([shard]);
    await pushWithSkopeo(registry, fixture.artifact, "models/ranged", "v1");
    const mf = await startWorker(join(import.meta.dirname, "pull-worker.ts"), { cache: true });
    try {
      const ref = `${registry.host}/models/ranged:v1`;
      registry.blobRequests.length = 0;
      const url = `http://worker/?ref=${encodeURIComponent(ref)}&chunk=${256 * 1024}`;
      const report = (await (await mf.dispatchFetch(url)).json()) as Record<string, unknown>;
      expect(report.code, String(report.message)).toBeUndefined();
      expect(report.digest).toBe(fixture.artifact.descriptor.digest);
      expect(report.sizes).toMatchObject({ "model.safetensors": shard.byteLength });
      // The weight came as five ranges of 256 KiB and its last 7 bytes' range, with nothing asked twice.
      const ranges = registry.blobRequests.map((h) => h.range).filter((r): r is string => r !== undefined);
      expect(ranges).toHaveLength(5);
      expect(ranges[0]).toBe(`bytes=0-${256 * 1024 - 1}`);
      expect(new Set(ranges).size).toBe(ranges.length);
    } finally {
      await mf.dispose();
    }
  });
});
