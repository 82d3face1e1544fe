import { join } from "node:path";
import type { BrowserContext } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, serveRegistryProxy } from "../../src/node/index.js";
import { pushWithSkopeo } from "../support/layout.js";
import { dockerV01, type ModelFixture } from "../support/models.js";
import { servePage, type TestPage } from "../support/page.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";

const MiB = 1024 * 1024;

describe("browser faults in Chromium", () => {
  let registry: TestRegistry;
  let proxy: RunningServer;
  let page: TestPage;
  let fixture: ModelFixture;
  let ref: string;
  let blobBytes = 0;
  const blobRequests: string[] = [];
  /** Every upstream blob request: its digest, the offset its Range asked from, the bytes it got, when. */
  const blobLog: { digest: string; from: number; bytes: number; phase: string }[] = [];
  let phase = "";
  let throttle = 0;

  /** The proxy's upstream fetch: counts blob bytes and requests, and can slow blob bodies down. */
  const countingFetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const response = await fetch(input, init);
    const url = String(input instanceof Request ? input.url : input);
    if (!/\/blobs\/sha256:/.test(url) || !response.body || response.status >= 300) return response;
    blobRequests.push(url);
    const headers = new Headers(input instanceof Request ? input.headers : undefined);
    for (const [k, v] of new Headers(init?.headers)) headers.set(k, v);
    const range = /^bytes=(\d+)-/.exec(headers.get("range") ?? "");
    const entry = {
      digest: /\/blobs\/(sha256:[0-9a-f]{64})/.exec(url)?.[1] ?? "",
      from: range ? Number(range[1]) : 0,
      bytes: 0,
      phase,
    };
    blobLog.push(entry);
    const body = response.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        async transform(chunk, controller) {
          for (let at = 0; at < chunk.byteLength; at += 64 * 1024) {
            if (throttle) await new Promise((r) => setTimeout(r, throttle));
            const part = chunk.subarray(at, at + 64 * 1024);
            blobBytes += part.byteLength;
            entry.bytes += part.byteLength;
            controller.enqueue(part);
          }
        },
      }),
    );
    return new Response(body, { status: response.status, headers: response.headers });
  }) as typeof fetch;

  beforeAll(async () => {
    registry = await startRegistry();
    fixture = await dockerV01([
      new Uint8Array(6 * MiB).map((_, i) => i & 0xff),
      new Uint8Array(1000).fill(1),
    ]);
    await pushWithSkopeo(registry, fixture.artifact, "models/big", "v1");
    ref = `${registry.host}/models/big:v1`;
    proxy = await serveRegistryProxy({ allow: [registry.host], port: 0, fetch: countingFetch });
    page = await servePage(join(import.meta.dirname, "../pages/faults-page.ts"));
  });
  afterAll(async () => {
    await page?.close();
    await proxy?.close();
    await registry?.stop();
  });

  /** A tab; tabs of one context share storage and Web Locks, like tabs of one browser profile. */
  const open = async (context?: BrowserContext) => {
    const tab = await (context ?? (await page.browser.newContext())).newPage();
    await tab.goto(`${page.origin}/`);
    await tab.waitForFunction(() => typeof window.faultPull === "function");
    return tab;
  };
  /**
   * Pulls `request` in a new tab with blob bodies at 64 KiB per `pace` ms (8: about 8 MB/s, the 6 MiB
   * shard takes most of a second), reloads the tab at `at` (40 %), and pulls again unthrottled;
   * `blobLog` phases "before"/"after".
   */
  const pullReloadPull = async (request: Parameters<Window["faultPull"]>[0], at = 0.4, pace = 8) => {
    const tab = await open();
    blobBytes = 0;
    blobLog.length = 0;
    phase = "before";
    throttle = pace;
    void tab.evaluate((r) => window.faultPull(r), request).catch(() => {});
    await tab.waitForFunction((p) => window.progress > p, at, { timeout: 20_000 });
    await tab.reload();
    phase = "after";
    await tab.waitForFunction(() => typeof window.faultPull === "function");
    throttle = 0;
    return { tab, result: await tab.evaluate((r) => window.faultPull(r), request) };
  };
  const needed = () => [...fixture.artifact.blobs.values()].reduce((n, b) => n + b.byteLength, 0);

  it.each(["opfs", "idb"] as const)(
    "%s: a reload in the middle of a pull, then a pull that resumes",
    async (kind) => {
      const request = { kind, name: `reload-${kind}`, reference: ref, proxy: proxy.url, chunkSize: MiB };
      const { tab, result } = await pullReloadPull(request);
      expect(result.code, String(result.message)).toBeUndefined();
      expect(result.digest).toBe(fixture.artifact.descriptor.digest);
      // The resumed pull asked for the shard from an offset past 0, got exactly the rest, and in all
      // fetched fewer bytes after the reload than the shard alone.
      const [shard, bytes] = [...fixture.artifact.blobs].find(([, b]) => b.byteLength === 6 * MiB) ?? [];
      const before = blobLog.filter((r) => r.phase === "before" && r.digest === shard);
      const after = blobLog.filter((r) => r.phase === "after" && r.digest === shard);
      expect(before, "the shard was being fetched at the reload").toHaveLength(1);
      expect(after, "one request for the rest of the shard").toHaveLength(1);
      const resumed = after[0] as (typeof after)[number];
      expect(resumed.from).toBeGreaterThan(0);
      expect(resumed.bytes).toBe((bytes?.byteLength ?? 0) - resumed.from);
      const afterBytes = blobLog.filter((r) => r.phase === "after").reduce((n, r) => n + r.bytes, 0);
      expect(afterBytes).toBeLessThan(bytes?.byteLength ?? 0);
      // Bytes in flight at the reload are lost; what was checkpointed before it is not fetched again.
      // Lost, measured over 8 runs each: OPFS 0.69–0.90 MiB (resumed from 2 MiB); IndexedDB 0.69–2.32
      // MiB: when its last chunk's transaction had not committed as the page went away it resumed
      // from 1 MiB (the chunk before, the chunk being filled and what the network had sent ahead).
      expect(blobBytes).toBeLessThan(needed() + 2 * request.chunkSize + MiB);
      await tab.context().close();
    },
  );

  it.each(["opfs", "idb"] as const)(
    "%s: a reload while the shard comes in parallel ranges written at their offsets, then a pull that fetches only the holes",
    async (kind) => {
      // 6 ranges of 1 MiB, 3 at a time, each body about 1.6 MB/s (slower than the store writes and
      // checkpoints, every 256 KiB: a store that falls behind holds ranges ahead in memory).
      const ranges = {
        chunkBytes: MiB,
        connections: 3,
        fastBytesPerSecond: Number.POSITIVE_INFINITY,
        atOffsets: true,
      };
      const chunkSize = 256 * 1024;
      const request = {
        kind,
        name: `reload-ranges-${kind}`,
        reference: ref,
        proxy: proxy.url,
        chunkSize,
        ranges,
      };
      // Reloaded half-way: the ranges ahead of the prefix have landed pieces by then.
      const { tab, result } = await pullReloadPull(request, 0.5, 40);
      expect(result.code, String(result.message)).toBeUndefined();
      expect(result.digest).toBe(fixture.artifact.descriptor.digest);
      const [shard, bytes] = [...fixture.artifact.blobs].find(([, b]) => b.byteLength === 6 * MiB) ?? [];
      const size = bytes?.byteLength ?? 0;
      const before = blobLog.filter((r) => r.phase === "before" && r.digest === shard);
      const after = blobLog.filter((r) => r.phase === "after" && r.digest === shard);
      expect(before.length, "the shard came in ranges before the reload").toBeGreaterThan(1);
      // The resumed pull asks only for what the store lacks: holes between ranges that landed.
      const asked = after.map((r) => [r.from, r.from + r.bytes] as const).sort((a, b) => a[0] - b[0]);
      const gaps = asked.filter(
        (span, i) => i > 0 && span[0] > (asked[i - 1] as readonly [number, number])[1],
      );
      expect(asked[0]?.[0]).toBeGreaterThan(0);
      expect(gaps.length, JSON.stringify(asked)).toBeGreaterThan(0);
      // What the reload cost: each range's bytes not yet written (under a store chunk each), those
      // written since the last checkpoint (under two chunks), and what was in the sockets and the
      // ranges' read-ahead (under 2 MiB).
      const fetched = [...before, ...after].reduce((n, r) => n + r.bytes, 0);
      const lost = fetched - size;
      expect(lost).toBeLessThanOrEqual((ranges.connections + 2) * chunkSize + 2 * MiB);
      console.log(
        `${kind}: reload at ${before.reduce((n, r) => n + r.bytes, 0)} of ${size}; ${lost} bytes fetched twice; asked after it ${JSON.stringify(asked)}`,
      );
      await tab.context().close();
    },
  );

  it("two tabs pulling the same model download each blob once", async () => {
    const request = {
      kind: "opfs" as const,
      name: "two-tabs",
      reference: ref,
      proxy: proxy.url,
      chunkSize: MiB,
    };
    const context = await page.browser.newContext();
    const [a, b] = [await open(context), await open(context)];
    blobRequests.length = 0;
    throttle = 2;
    const results = await Promise.all([
      a.evaluate((r) => window.faultPull(r), request),
      b.evaluate((r) => window.faultPull(r), request),
    ]);
    throttle = 0;
    for (const result of results)
      expect(result.digest, String(result.message)).toBe(fixture.artifact.descriptor.digest);
    expect(blobRequests).toHaveLength(fixture.artifact.blobs.size);
    await context.close();
  });

  // The up-front check (QUOTA_EXCEEDED before a byte is fetched) runs in the contract suite with an
  // injected estimate: Chromium's navigator.storage.estimate() ignores the DevTools quota override.

  it.each([
    ["in order", { atOffsets: false }],
    // Ranges side by side, each appended to its own piece: the failure comes in whichever piece.
    [
      "in ranges at their offsets",
      { chunkBytes: MiB, connections: 3, fastBytesPerSecond: 1e15, atOffsets: true },
    ],
  ] as const)(
    "opfs: the quota running out half-way through a write (%s) is QUOTA_EXCEEDED, and nothing is listed",
    async (_, ranges) => {
      const tab = await open();
      const cdp = await tab.context().newCDPSession(tab);
      await cdp.send("Storage.overrideQuotaForOrigin", { origin: page.origin, quotaSize: 3 * MiB });
      try {
        // Without the up-front check, the browser's own QuotaExceededError comes in the middle of the shard.
        const request = {
          kind: "opfs" as const,
          name: `quota-halfway-${ranges.atOffsets ? "ranges" : "order"}`,
          reference: ref,
          proxy: proxy.url,
          chunkSize: MiB,
          skipEstimate: true,
          ranges,
        };
        const result = await tab.evaluate((r) => window.faultPull(r), request);
        expect(result.code, String(result.message)).toBe("QUOTA_EXCEEDED");
        expect(await tab.evaluate((r) => window.faultModels(r), request)).toBe(0);
        // With room again, the pull resumes from what was sound before the failure and completes.
        await cdp.send("Storage.overrideQuotaForOrigin", { origin: page.origin });
        const again = await tab.evaluate((r) => window.faultPull(r), request);
        expect(again.digest, String(again.message)).toBe(fixture.artifact.descriptor.digest);
      } finally {
        await cdp.send("Storage.overrideQuotaForOrigin", { origin: page.origin });
        await tab.context().close();
      }
    },
  );
});
