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

  async function waitForCache(layer: Descriptor): Promise<Response> {
    for (let i = 0; i < 50; i++) {
      const response = await fetch(`${proxyUrl}/${registry.host}/v2/private/tiny/blobs/${layer.digest}`, {
        headers: { range: "bytes=100-199" },
      });
      if (response.headers.get("x-oci-proxy-cache") === "hit") return response;
      await response.arrayBuffer();
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

    // The cache serves anyone who names the digest: no credentials, no upstream request.
    const hit = await waitForCache(layer);
    expect(hit.status).toBe(206);
    expect(hit.headers.get("content-range")).toBe(`bytes 100-199/${layer.size}`);
    expect(sameBytes(new Uint8Array(await hit.arrayBuffer()), full.subarray(100, 200))).toBe(true);
    expect(registry.blobRequests).toHaveLength(1);
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
    await new Promise((r) => setTimeout(r, 500));
    const again = await fetch(`${proxyUrl}/${registry.host}/v2/private/tiny/blobs/${layer.digest}`, {
      headers: { authorization: `Basic ${btoa(`${USER.username}:${USER.password}`)}` },
    });
    await again.arrayBuffer();
    expect(again.headers.get("x-oci-proxy-cache")).toBeNull();
    expect(registry.blobRequests.length).toBeGreaterThanOrEqual(1);
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
