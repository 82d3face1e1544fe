// Issue 19 in Chromium: a ModelPack model whose weights are an uncompressed tar layer (its config
// files a tar+gzip one), pulled through the proxy from the real Distribution into OPFS and IndexedDB.
// The plain tar's files are served in place (byte ranges of the stored layer, nothing read back),
// the gzip layer is dropped once its files are stored, and the store holds the model's files once
// plus headers and manifests. A page reload in the middle of the tar layer resumes there and ends
// with the same record and bytes as an uninterrupted pull. A gate between the proxy and the
// registry logs each blob request's Range and slows the tar layer's last bytes down, so that the
// reload lands inside it.
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, serveRegistryProxy } from "../../src/node/index.js";
import type { TarPullRequest, TarPullResult } from "../pages/tar-page.js";
import { pushWithSkopeo, sha256 } from "../support/layout.js";
import { type ModelFixture, modelPackTarWeights } from "../support/models.js";
import { servePage, type TestPage } from "../support/page.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";
import { shards } from "../support/tensor-model.js";

const MiB = 1024 * 1024;
/** The padding file that makes the tar layer large enough to be cut after two checkpoints (16 MiB apart). */
const PADDING = 48 * MiB;
/**
 * Where the gate slows the tar layer down to SLOW_RATE: five 8 MiB chunks come at once, so the
 * store checkpoints at 16 and 32 MiB; the last ~8 MiB take seconds, and the reload lands in them.
 */
const SLOW_FROM = 40 * MiB;
const SLOW_RATE = 1024 * 1024;

interface Gate {
  host: string;
  /** Blob requests seen: the digest's hex and the Range header. */
  blobs: { hex: string; range?: string }[];
  /**
   * Slow this blob down from byte `at` on, in whatever requests (ranges) it is asked for: each sends
   * its bytes below `at` at once, the rest at `bytesPerSecond` (undefined: no blob is slowed).
   */
  slowFrom(slow?: { hex: string; at: number; bytesPerSecond: number }): void;
  close(): Promise<void>;
}

/** Byte spans [start, end) that blob requests with these Range headers asked for, in order. */
function spans(requests: { range?: string }[], size: number): [number, number][] {
  return requests
    .map((r): [number, number] => {
      const m = /^bytes=(\d+)-(\d*)$/.exec(r.range ?? "bytes=0-");
      return [Number(m?.[1]), m?.[2] ? Number(m[2]) + 1 : size];
    })
    .sort((a, b) => a[0] - b[0]);
}

/** Whether these spans cover [from, size) with every byte once. */
function coverOnce(requests: { range?: string }[], from: number, size: number): boolean {
  let at = from;
  for (const [start, end] of spans(requests, size)) {
    if (start !== at) return false;
    at = end;
  }
  return at === size;
}

/** What `read` answers once two reads 250 ms apart agree (10 s at most). */
async function settled(read: () => Promise<number>): Promise<number> {
  const deadline = Date.now() + 10_000;
  let last = await read();
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const now = await read();
    if (now === last || Date.now() > deadline) return now;
    last = now;
  }
}

/** A pass-through HTTP gate in front of the registry. */
async function startGate(upstream: string): Promise<Gate> {
  const blobs: Gate["blobs"] = [];
  let slow: { hex: string; at: number; bytesPerSecond: number } | undefined;
  const [upstreamHost, upstreamPort] = upstream.split(":");
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const hex = /\/blobs\/sha256:([0-9a-f]{64})$/.exec(req.url ?? "")?.[1];
    if (hex && req.method === "GET")
      blobs.push({ hex, ...(req.headers.range ? { range: req.headers.range } : {}) });
    const slowed = hex !== undefined && req.method === "GET" && slow?.hex === hex ? slow : undefined;
    const forward = request(
      {
        host: upstreamHost,
        port: Number(upstreamPort),
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        if (!slowed) return void answer.pipe(res);
        // Where this response's body starts in the blob.
        let offset = Number(/^bytes (\d+)-/.exec(String(answer.headers["content-range"] ?? ""))?.[1] ?? 0);
        const slice = 64 * 1024;
        const queue: Buffer[] = [];
        const drain = () => {
          const chunk = queue.shift();
          if (!chunk) return void (answer.readableEnded ? res.end() : answer.resume());
          const part = chunk.subarray(0, slice);
          if (chunk.byteLength > slice) queue.unshift(chunk.subarray(slice));
          if (!res.destroyed) res.write(part);
          setTimeout(drain, (1000 * part.byteLength) / slowed.bytesPerSecond);
        };
        answer.on("data", (chunk: Buffer) => {
          const fast = Math.max(0, Math.min(chunk.byteLength, slowed.at - offset));
          offset += chunk.byteLength;
          if (fast > 0) res.write(chunk.subarray(0, fast));
          if (fast < chunk.byteLength) {
            queue.push(chunk.subarray(fast));
            if (!answer.isPaused()) {
              answer.pause();
              drain();
            }
          }
        });
        answer.on("end", () => {
          if (queue.length === 0 && !answer.isPaused()) res.end();
        });
        res.on("close", () => {
          queue.length = 0;
          answer.destroy();
        });
      },
    );
    forward.on("error", () => res.destroy());
    req.on("error", () => forward.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  return {
    host: `127.0.0.1:${typeof address === "object" && address ? address.port : 0}`,
    blobs,
    slowFrom: (value) => {
      slow = value;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe("in Chromium, a ModelPack model with tar weight layers, through the proxy", () => {
  let registry: TestRegistry;
  let gate: Gate;
  let proxy: RunningServer;
  let page: TestPage;
  let fixture: ModelFixture;
  let reference: string;
  let tarLayer: { digest: string; size: number };
  let gzipLayer: { digest: string; size: number };
  let manifest: { config: { digest: string; size: number } };
  const fileDigests: Record<string, string> = {};
  let fileBytes = 0;
  /** The uninterrupted pull of each store kind, for the resumed one to be compared with. */
  const whole: Partial<Record<"opfs" | "idb", TarPullResult>> = {};
  /** The pull resumed after a reload, and the uninterrupted one. */
  const reloaded: Partial<Record<"opfs" | "idb", { resumed: TarPullResult; uninterrupted: TarPullResult }>> =
    {};

  const pull = async (req: TarPullRequest): Promise<TarPullResult> => {
    const tab = await page.newTab();
    await tab.goto(`${page.origin}/`);
    await tab.waitForFunction(() => typeof window.pullTar === "function");
    const result = await tab.evaluate((r) => window.pullTar(r), req);
    await tab.close();
    return result;
  };

  beforeAll(async () => {
    registry = await startRegistry();
    fixture = await modelPackTarWeights(shards(), PADDING);
    await pushWithSkopeo(registry, fixture.artifact, "models/tar-weights", "v1");
    manifest = JSON.parse(new TextDecoder().decode(fixture.artifact.bytes));
    [tarLayer, gzipLayer] = (manifest as unknown as { layers: { digest: string; size: number }[] })
      .layers as [{ digest: string; size: number }, { digest: string; size: number }];
    for (const [path, bytes] of Object.entries(fixture.files)) {
      fileDigests[path] = sha256(bytes);
      fileBytes += bytes.byteLength;
    }
    gate = await startGate(registry.host);
    proxy = await serveRegistryProxy({ allow: [gate.host], port: 0 });
    reference = `${gate.host}/models/tar-weights:v1`;
    // Tabs in an on-disk profile: OPFS and IndexedDB on disk, as users have, and kept across reloads.
    page = await servePage(join(import.meta.dirname, "../pages/tar-page.ts"), { profile: true });
  }, 120_000);
  afterAll(async () => {
    await page?.close();
    await proxy?.close();
    await gate?.close();
    await registry?.stop();
  });

  /** What every complete pull of the model must give, whatever came before it. */
  function expectServedInPlace(result: TarPullResult, gzipDropped = true) {
    expect(result.code, String(result.message)).toBeUndefined();
    expect(result.digest).toBe(fixture.artifact.descriptor.digest);
    expect(result.weights).toEqual(fixture.weights);
    const files = new Map((result.files ?? []).map((f) => [f.path, f]));
    expect([...files.keys()].sort()).toEqual(Object.keys(fixture.files).sort());
    const tar = fixture.artifact.blobs.get(tarLayer.digest) as Uint8Array;
    for (const [path, digest] of Object.entries(fileDigests)) {
      const file = files.get(path);
      // In place: no digest of its own (the layer's verified it); else its own blob's.
      expect(file?.digest, path).toBe(path.startsWith("weights/") ? undefined : digest);
      // Read back through the store: a range of the tar layer, or the file's own blob.
      expect(result.read?.[path], path).toBe(digest);
      if (path.startsWith("weights/")) {
        expect(file?.layer, path).toMatchObject({ digest: tarLayer.digest, size: tarLayer.size });
        const at = file?.layer?.offset as number;
        expect(sha256(tar.subarray(at, at + (file?.size as number))), path).toBe(digest);
      } else {
        expect(file?.layer, path).toBeUndefined();
      }
    }
    // The store holds the manifest, its config, the tar layer, the gzip layer's files and the
    // record (two small blobs): not the gzip layer, and no copy of a file the tar serves.
    const blobs = new Map((result.blobs ?? []).map((b) => [b.digest, b.size]));
    expect(blobs.get(tarLayer.digest)).toBe(tarLayer.size);
    if (gzipDropped) expect(blobs.has(gzipLayer.digest)).toBe(false);
    else blobs.delete(gzipLayer.digest); // checked by the test of the known bug below
    expect(blobs.get(fixture.artifact.descriptor.digest)).toBe(fixture.artifact.bytes.byteLength);
    expect(blobs.get(manifest.config.digest)).toBe(manifest.config.size);
    for (const path of ["config.json", "tokenizer.json"])
      expect(blobs.get(fileDigests[path] as string), path).toBe(fixture.files[path]?.byteLength);
    for (const path of Object.keys(fixture.files).filter((p) => p.startsWith("weights/")))
      expect(blobs.has(fileDigests[path] as string), path).toBe(false);
    const known = new Set([
      tarLayer.digest,
      fixture.artifact.descriptor.digest,
      manifest.config.digest,
      fileDigests["config.json"],
      fileDigests["tokenizer.json"],
    ]);
    const others = [...blobs].filter(([digest]) => !known.has(digest));
    expect(others).toHaveLength(2);
    for (const [, size] of others) expect(size).toBeLessThan(16 * 1024);
    expect(result.usage?.ingestBytes).toBe(0);
    // Store bytes over the model's file bytes: the tar's headers and padding, manifests, the record.
    const stored =
      (result.usage?.bytes as number) -
      (gzipDropped
        ? 0
        : (result.blobs ?? []).filter((b) => b.digest === gzipLayer.digest).reduce((n, b) => n + b.size, 0));
    expect(stored).toBe([...blobs.values()].reduce((n, s) => n + s, 0));
    expect(stored - fileBytes).toBeGreaterThan(0);
    expect(stored - fileBytes).toBeLessThan(64 * 1024);
    expect(stored / fileBytes).toBeLessThanOrEqual(1.01);
    return stored / fileBytes;
  }

  it.each(["opfs", "idb"] as const)(
    "%s: the tar's files are served in place, nothing of it is read back, the gzip layer is dropped",
    async (kind) => {
      gate.blobs.length = 0;
      const result = await pull({ kind, name: `whole-${kind}`, reference, proxy: proxy.url });
      const ratio = expectServedInPlace(result);
      console.log(
        `${kind}: store ${result.usage?.bytes} B / model files ${fileBytes} B = ${ratio.toFixed(5)} (${result.usage?.blobs} blobs)`,
      );
      // Each layer came from the registry once: its requests (whole, or ranges) cover it byte for byte.
      for (const layer of [tarLayer, gzipLayer]) {
        const asked = gate.blobs.filter((b) => b.hex === layer.digest.slice(7));
        expect(coverOnce(asked, 0, layer.size), JSON.stringify(asked)).toBe(true);
      }
      // During the pull nothing of the tar layer was read back; the gzip layer once, to store its files.
      expect((result.reads ?? []).filter((r) => r.digest === tarLayer.digest)).toEqual([]);
      expect((result.reads ?? []).filter((r) => r.digest === gzipLayer.digest)).toEqual([
        { digest: gzipLayer.digest, offset: 0, length: gzipLayer.size },
      ]);
      whole[kind] = result;
    },
    120_000,
  );

  it.each(["opfs", "idb"] as const)(
    "%s: a page reload in the middle of the tar layer resumes there, with the same record and bytes",
    async (kind) => {
      const request = { kind, name: `reloaded-${kind}`, reference, proxy: proxy.url };
      const tab = await page.newTab();
      await tab.goto(`${page.origin}/`);
      await tab.waitForFunction(() => typeof window.startTar === "function");
      gate.blobs.length = 0;
      gate.slowFrom({ hex: tarLayer.digest.slice(7), at: SLOW_FROM, bytesPerSecond: SLOW_RATE });
      await tab.evaluate((r) => window.startTar(r), request);
      // Reloaded once the page has written the tar layer up to its second checkpoint. (Polled from
      // here: waitForFunction takes a pending promise for a truthy answer.)
      const written = () => tab.evaluate(([k, n]) => window.ingestBytes(k, n), [kind, request.name] as const);
      const deadline = Date.now() + 60_000;
      let before = await written();
      while (before < 32 * MiB && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        before = await written();
      }
      await tab.reload();
      await tab.waitForFunction(() => typeof window.pullTar === "function");
      gate.slowFrom(undefined);
      // Where the reload left the tar layer: past its second checkpoint, not at its end. Read once the
      // old page's writer is gone: while it still rewrites the record, a read of the record fails
      // (busy) and the store counts what the pieces hold, past the checkpoint the resume starts from
      // (32 MiB and 219 bytes against 32 MiB, in 1 of 4 local runs of the in-order path).
      const checkpoint = await settled(written);
      expect(checkpoint, `${before} bytes held before the reload`).toBeGreaterThanOrEqual(32 * MiB);
      expect(checkpoint).toBeLessThan(tarLayer.size);
      gate.blobs.length = 0;
      const resumed = await tab.evaluate((r) => window.pullTar(r), request);
      await tab.close();
      // The gzip layer is left behind after a reload: see the known bug below.
      expectServedInPlace(resumed, false);
      // Only the rest of the tar layer was asked for, from exactly where the store's checkpoint was,
      // each byte once (in one request or in ranges).
      const asked = gate.blobs.filter((b) => b.hex === tarLayer.digest.slice(7));
      expect(asked.length).toBeGreaterThan(0);
      console.log(
        `${kind}: reloaded at checkpoint ${checkpoint} of ${tarLayer.size}; then asked ${JSON.stringify(asked.map((a) => a.range ?? "whole"))}`,
      );
      expect(coverOnce(asked, checkpoint, tarLayer.size), JSON.stringify(asked)).toBe(true);
      // The same record, file for file, and the same blobs as the uninterrupted pull.
      const uninterrupted =
        whole[kind] ?? (await pull({ kind, name: `whole-${kind}`, reference, proxy: proxy.url }));
      expect(resumed.files).toEqual(uninterrupted.files);
      expect(resumed.read).toEqual(uninterrupted.read);
      reloaded[kind] = { resumed, uninterrupted };
    },
    120_000,
  );

  // The pull cut by the reload had already stored the small gzip layer (layers stream four at a
  // time); the resumed pull drops it all the same, as no model pulled with keepArchives keeps it.
  it.each(["opfs", "idb"] as const)(
    "%s: after the reload the store holds the same blobs as after an uninterrupted pull",
    (kind) => {
      const { resumed, uninterrupted } = reloaded[kind] ?? {};
      // The model's blobs (the record's two differ between any two pulls: it says when it was pulled).
      const model = new Set([
        fixture.artifact.descriptor.digest,
        manifest.config.digest,
        tarLayer.digest,
        gzipLayer.digest,
        ...Object.values(fileDigests),
      ]);
      const held = (result?: TarPullResult) =>
        new Map((result?.blobs ?? []).filter((b) => model.has(b.digest)).map((b) => [b.digest, b.size]));
      expect(resumed?.code).toBeUndefined();
      expect(uninterrupted?.blobs?.length).toBe(7);
      expect(resumed?.blobs?.length).toBe(uninterrupted?.blobs?.length);
      expect(held(resumed)).toEqual(held(uninterrupted));
    },
  );
});
