import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRegistryClient, type Descriptor } from "../../src/index.js";
import { pushWithSkopeo, sameBytes, sampleModel } from "../support/layout.js";
import { startRegistry, type TestRegistry, USER } from "../support/registry.js";
import { startWorker } from "../support/workerd.js";

const model = sampleModel({ shardSize: 1024 * 1024 + 3 });

describe("the Workers entry in workerd (miniflare), in front of the real registry", () => {
  let registry: TestRegistry;
  let mf: Miniflare;
  let proxyUrl: string;

  beforeAll(async () => {
    registry = await startRegistry({ auth: "token", redirectBlobs: true });
    await pushWithSkopeo(registry, model, "private/tiny", "v1");
    mf = await startWorker(join(import.meta.dirname, "../../edge/worker.ts"), {
      bindings: { ALLOW: registry.host, CACHE_BLOBS: "true" },
      cache: true,
    });
    proxyUrl = (await mf.ready).origin;
  });
  afterAll(async () => {
    await mf?.dispose();
    await registry?.stop();
  });

  const client = () => createRegistryClient({ proxy: proxyUrl, credentials: { [registry.host]: USER } });
  const ref = () => `${registry.host}/private/tiny:v1`;

  /** A client with the right credentials that records the proxy's cache header on each answer. */
  function recordingClient() {
    const cacheHeaders: (string | null)[] = [];
    const c = createRegistryClient({
      proxy: proxyUrl,
      credentials: { [registry.host]: USER },
      fetch: (async (input: RequestInfo | URL, init?: RequestInit) => {
        const response = await fetch(input, init);
        cacheHeaders.push(response.headers.get("x-oci-proxy-cache"));
        return response;
      }) as typeof fetch,
    });
    return { c, cacheHeaders };
  }

  async function waitForCache(layer: Descriptor): Promise<Uint8Array> {
    for (let i = 0; i < 50; i++) {
      const { c, cacheHeaders } = recordingClient();
      const range = await c.fetchBlobRange(ref(), layer, { offset: 100, length: 100 });
      const bytes = new Uint8Array(await new Response(range).arrayBuffer());
      if (cacheHeaders.includes("hit")) return bytes;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error("the blob never reached the cache");
  }

  it("proxies the token flow and a blob, caches it verified, and serves a Range from the cache", async () => {
    registry.tokenRequests.length = 0;
    registry.blobRequests.length = 0;
    const c = client();
    const { digest, manifest } = await c.getManifest(ref());
    expect(digest).toBe(model.descriptor.digest);
    expect(registry.tokenRequests).toHaveLength(1);
    const layer = manifest.layers[0] as Descriptor;
    const bytes = new Uint8Array(await new Response(await c.fetchBlob(ref(), layer)).arrayBuffer());
    const full = model.blobs.get(layer.digest) as Uint8Array;
    expect(sameBytes(bytes, full)).toBe(true);
    expect(registry.blobRequests).toHaveLength(1);

    // A caller the registry admits gets the cached bytes: the registry answers a HEAD, no blob moves.
    const hit = await waitForCache(layer);
    expect(sameBytes(hit, full.subarray(100, 200))).toBe(true);
    expect(registry.blobRequests).toHaveLength(1);
  });

  it("caches a blob a client fetches in ranges, and serves the next client's ranges from the cache", async () => {
    // A blob of its own: the first test cached the other model's.
    const other = sampleModel({ shardSize: 1024 * 1024 + 5 });
    await pushWithSkopeo(registry, other, "private/ranged", "v1");
    const otherRef = `${registry.host}/private/ranged:v1`;
    const layer = (await client().getManifest(otherRef)).manifest.layers[0] as Descriptor;
    const full = other.blobs.get(layer.digest) as Uint8Array;
    // Ranges of 256 KiB, as large blobs are fetched with the default 16 MiB ones.
    const ranges = { connections: 4, chunkBytes: 256 * 1024, fastBytesPerSecond: Number.POSITIVE_INFINITY };
    const ranged = () => {
      const statuses: number[] = [];
      const hits: (string | null)[] = [];
      const c = createRegistryClient({
        proxy: proxyUrl,
        credentials: { [registry.host]: USER },
        ranges,
        fetch: (async (input: RequestInfo | URL, init?: RequestInit) => {
          const response = await fetch(input, init);
          const path = new URL(String(input instanceof Request ? input.url : input)).pathname;
          // Answers with bytes (a 401 before the token is no answer to count).
          if (path.includes("/blobs/") && response.status !== 401) {
            statuses.push(response.status);
            hits.push(response.headers.get("x-oci-proxy-cache"));
          }
          return response;
        }) as typeof fetch,
      });
      return { c, statuses, hits };
    };
    registry.blobRequests.length = 0;
    const first = ranged();
    const bytes = new Uint8Array(
      await new Response(await first.c.fetchBlobRange(otherRef, layer)).arrayBuffer(),
    );
    expect(sameBytes(bytes, full)).toBe(true);
    // The first range came whole (200), from the registry, and was cached on its way.
    expect(first.statuses).toEqual([200]);
    expect(registry.blobRequests).toHaveLength(1);
    expect(registry.blobRequests[0]?.range).toBeUndefined();
    for (let i = 0; i < 50; i++) {
      const next = ranged();
      const again = new Uint8Array(
        await new Response(await next.c.fetchBlobRange(otherRef, layer)).arrayBuffer(),
      );
      expect(sameBytes(again, full)).toBe(true);
      if (next.hits.every((h) => h === "hit")) {
        // Every range from the cache, in parallel: no blob byte from the registry again.
        expect(next.statuses.length, JSON.stringify([next.statuses, next.hits])).toBeGreaterThan(1);
        expect(next.statuses.every((s) => s === 206)).toBe(true);
        expect(registry.blobRequests).toHaveLength(1);
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error("the blob never reached the cache");
  });

  it("never serves a cached private blob to a caller without credentials: the registry decides", async () => {
    const layer = (await client().getManifest(ref())).manifest.layers[0] as Descriptor;
    await waitForCache(layer);
    registry.blobRequests.length = 0;
    for (const repository of ["private/tiny", "other/repo"]) {
      const anonymous = await fetch(`${proxyUrl}/${registry.host}/v2/${repository}/blobs/${layer.digest}`, {
        headers: { range: "bytes=100-199" },
      });
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get("x-oci-proxy-cache")).toBeNull();
      expect(anonymous.headers.get("www-authenticate")).toContain(`realm="${proxyUrl}/`);
      await anonymous.arrayBuffer();
    }
    // With credentials, under a repository that does not hold the blob: the registry says 404.
    const { c, cacheHeaders } = recordingClient();
    const error = await c.fetchBlob(`${registry.host}/other/repo`, layer).catch((e: unknown) => e);
    expect((error as { code?: string }).code).toBe("NOT_FOUND");
    expect(cacheHeaders).not.toContain("hit");
    expect(registry.blobRequests).toHaveLength(0);
  });

  it("never caches a blob whose bytes do not match its digest", async () => {
    const layer = (await client().getManifest(ref())).manifest.layers[1] as Descriptor;
    const path = registry.blobPath(layer.digest);
    const stored = await readFile(path);
    stored[0] = (stored[0] ?? 0) ^ 0xff;
    await writeFile(path, stored);
    registry.blobRequests.length = 0;
    const error = await new Response(await client().fetchBlob(ref(), layer))
      .arrayBuffer()
      .catch((e: unknown) => e);
    expect((error as { code?: string }).code).toBe("DIGEST_MISMATCH");
    // The positive control, fetched after the bad blob: once its copy is served from the cache, the
    // cache writes started by both fetches have had their chance (the same wait the caching test uses).
    const control = (await client().getManifest(ref())).manifest.layers[2] as Descriptor;
    const first = recordingClient();
    const controlBytes = new Uint8Array(
      await new Response(await first.c.fetchBlob(ref(), control)).arrayBuffer(),
    );
    expect(sameBytes(controlBytes, model.blobs.get(control.digest) as Uint8Array)).toBe(true);
    expect(first.cacheHeaders).not.toContain("hit");
    await waitForCache(control);
    // The bad blob again, by the token flow the caching test uses: the registry serves it (no hit).
    registry.blobRequests.length = 0;
    const again = recordingClient();
    const refetch = await new Response(await again.c.fetchBlob(ref(), layer))
      .arrayBuffer()
      .catch((e: unknown) => e);
    expect((refetch as { code?: string }).code).toBe("DIGEST_MISMATCH");
    expect(again.cacheHeaders.length).toBeGreaterThan(0);
    expect(again.cacheHeaders).not.toContain("hit");
    expect(registry.blobRequests).toHaveLength(1);
  });

  it("refuses hosts outside ALLOW", async () => {
    const response = await fetch(`${proxyUrl}/169.254.169.254/latest/meta-data/`);
    expect(response.status).toBe(403);
  });
});

describe("hashing inside workerd", () => {
  it("uses crypto.DigestStream, since WASM cannot be compiled at run time there", async () => {
    const mf = await startWorker(join(import.meta.dirname, "hasher-worker.ts"));
    try {
      const report = (await (await mf.dispatchFetch("http://worker/")).json()) as Record<string, unknown>;
      expect(report.digestStream).toBe(true);
      expect(report.wasm).toMatch(/^refused/);
      expect(report.sha256).toBe(`sha256:${createHash("sha256").update("abc").digest("hex")}`);
      expect(report.sha512).toBe(`sha512:${createHash("sha512").update("abc").digest("hex")}`);
    } finally {
      await mf.dispose();
    }
  });
});
