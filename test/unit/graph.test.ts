import { describe, expect, it } from "vitest";
import { OciError } from "../../src/errors.js";
import type { Descriptor } from "../../src/oci/manifest.js";
import { MediaType } from "../../src/oci/media-types.js";
import { copyGraph } from "../../src/store/graph.js";
import { createMemoryStore } from "../../src/store/memory.js";
import type { Store, WritableStore } from "../../src/store/types.js";
import { blobOf, sha256 } from "../support/blobs.js";

const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

async function put(store: Store, bytes: Uint8Array, mediaType: string): Promise<Descriptor> {
  const descriptor = { mediaType, digest: await sha256(bytes), size: bytes.byteLength };
  await store.push(descriptor, new Blob([bytes as Uint8Array<ArrayBuffer>]).stream());
  return descriptor;
}

/** A source store with an index of two manifests that share one layer. */
async function graph() {
  const source = createMemoryStore();
  const config = await blobOf(10, "application/vnd.example.config+json");
  const shared = await blobOf(3000, "application/vnd.example.layer");
  const own = await Promise.all([blobOf(2000, "application/vnd.example.layer"), blobOf(1000, "x")]);
  for (const b of [config, shared, ...own])
    await source.push(b.descriptor, new Blob([b.bytes as Uint8Array<ArrayBuffer>]).stream());
  const manifests: Descriptor[] = [];
  for (const layer of own) {
    const bytes = json({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: config.descriptor,
      layers: [shared.descriptor, layer.descriptor],
    });
    manifests.push(await put(source, bytes, MediaType.OciManifest));
  }
  const index = await put(
    source,
    json({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests }),
    MediaType.OciIndex,
  );
  return {
    source,
    index,
    manifests,
    config: config.descriptor,
    shared: shared.descriptor,
    own: own.map((b) => b.descriptor),
  };
}

/** A target that records the order pushes finish in and how many run at once. */
function recording(target: Store) {
  const order: string[] = [];
  let running = 0;
  let most = 0;
  const store: WritableStore = {
    ...target,
    push: async (blob, source, options) => {
      most = Math.max(most, ++running);
      try {
        await new Promise((r) => setTimeout(r, 5));
        return await target.push(blob, source, options);
      } finally {
        running--;
        order.push(blob.digest);
      }
    },
  };
  return { store, order, most: () => most };
}

describe("copyGraph", () => {
  it("copies every blob once, each manifest after what it points at, the config before the layers", async () => {
    const g = await graph();
    const target = createMemoryStore();
    const { store, order } = recording(target);
    const results = await copyGraph(g.source, store, g.index);
    const blobs = [g.config, g.shared, ...g.own, ...g.manifests, g.index];
    expect(order.toSorted()).toEqual(blobs.map((b) => b.digest).toSorted()); // each once: the shared layer too
    for (const b of blobs) expect(await target.exists(b)).toBe(true);
    const at = (d: Descriptor) => order.indexOf(d.digest);
    for (const m of g.manifests) {
      for (const below of [g.config, g.shared]) expect(at(below)).toBeLessThan(at(m));
      expect(at(m)).toBeLessThan(at(g.index));
    }
    expect(at(g.config)).toBeLessThan(at(g.shared));
    expect(results.get(g.shared.digest)).toEqual({ existed: false, resumedFrom: 0, fetched: 3000 });
    // Again: nothing fetched, everything existed.
    const again = await copyGraph(g.source, target, g.index);
    expect([...again.values()].every((r) => r.existed && r.fetched === 0)).toBe(true);
  });

  it("copies only the successors the filter takes, and the root always", async () => {
    const g = await graph();
    const target = createMemoryStore();
    const manifest = g.manifests[0] as Descriptor;
    await copyGraph(g.source, target, manifest, { filter: (d) => d.digest !== g.shared.digest });
    expect(await target.exists(g.shared)).toBe(false);
    expect(await target.exists(manifest)).toBe(true);
    expect(await target.exists(g.config)).toBe(true);
  });

  it("copies at most `concurrency` blobs at a time", async () => {
    const source = createMemoryStore();
    const layers = await Promise.all(Array.from({ length: 8 }, () => blobOf(100, "x")));
    for (const b of layers)
      await source.push(b.descriptor, new Blob([b.bytes as Uint8Array<ArrayBuffer>]).stream());
    const config = await put(source, json({}), "application/vnd.example.config+json");
    const root = await put(
      source,
      json({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config,
        layers: layers.map((b) => b.descriptor),
      }),
      MediaType.OciManifest,
    );
    for (const concurrency of [1, 3]) {
      const { store, most } = recording(createMemoryStore());
      await copyGraph(source, store, root, { concurrency });
      expect(most()).toBe(concurrency);
    }
  });

  it("stops at the first failure: blobs not yet started are never asked for, no manifest is written", async () => {
    const g = await graph();
    const target = createMemoryStore();
    const asked: string[] = [];
    const failing = {
      ...g.source,
      fetch: async (blob: Descriptor, options?: { offset?: number }) => {
        asked.push(blob.digest);
        if (blob.digest === g.shared.digest) throw new OciError("NETWORK", "Cannot fetch: cut (test)");
        return g.source.fetch(blob, options);
      },
    };
    const error = await copyGraph(failing, target, g.index, { concurrency: 1 }).catch((e: unknown) => e);
    expect((error as OciError).code).toBe("NETWORK");
    for (const m of [...g.manifests, g.index]) expect(await target.exists(m)).toBe(false);
    // One at a time: the config, then the shared layer fails; the manifests' own layers never start.
    for (const own of g.own) expect(asked).not.toContain(own.digest);
  });

  it("refuses a manifest over the size limit before reading it", async () => {
    const g = await graph();
    const huge = { ...(g.manifests[0] as Descriptor), size: 5 * 1024 * 1024 };
    const error = await copyGraph(g.source, createMemoryStore(), huge).catch((e: unknown) => e);
    expect((error as OciError).code).toBe("MANIFEST_INVALID");
    expect((error as OciError).message).toContain("over the 4194304-byte limit");
  });

  it("refuses indexes nested past the depth limit before copying anything below them", async () => {
    const source = createMemoryStore();
    const leaf = await blobOf(10, "x");
    await source.push(leaf.descriptor, new Blob([leaf.bytes as Uint8Array<ArrayBuffer>]).stream());
    let root = await put(
      source,
      json({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: leaf.descriptor, layers: [] }),
      MediaType.OciManifest,
    );
    const depthOf = async (levels: number) => {
      for (let i = 0; i < levels; i++) {
        root = await put(
          source,
          json({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [root] }),
          MediaType.OciIndex,
        );
      }
      return root;
    };
    const target = createMemoryStore();
    await copyGraph(source, target, await depthOf(8)); // 8 indexes over the manifest: copied
    expect(await target.exists(leaf.descriptor)).toBe(true);
    const deeper = createMemoryStore();
    const error = await copyGraph(source, deeper, await depthOf(1)).catch((e: unknown) => e);
    expect((error as OciError).message).toMatch(/manifests nest more than 8 deep$/);
    expect(await deeper.exists(leaf.descriptor)).toBe(false);
  });

  it("stops when aborted", async () => {
    const g = await graph();
    const controller = new AbortController();
    controller.abort();
    const error = await copyGraph(g.source, createMemoryStore(), g.index, {
      signal: controller.signal,
    }).catch((e: unknown) => e);
    expect((error as OciError).code).toBe("ABORTED");
  });
});
