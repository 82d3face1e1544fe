// Issue 21: a large blob pulled in several Range requests at a time, against the real registry
// behind a WAN-shaped proxy (round trip, per-connection rate cap): bytes and requests counted at the
// proxy. Speed is the benchmark's to show (bench/), not a test's.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryStore, createRegistryClient, pullModel } from "../../src/index.js";
import { createFsStore } from "../../src/node/index.js";
import { buildManifest, pushWithSkopeo, sameBytes } from "../support/layout.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";
import { type ShapingOptions, type ShapingProxy, startShapingProxy } from "../support/shaping-proxy.js";

const MiB = 1024 * 1024;
const WEIGHT = new Uint8Array(randomBytes(40 * MiB));
// Ranges whatever the first range's rate: the proxy runs in this process, beside the client and its
// hashing, and on this machine 4 connections through it came no faster than one (38-45 MB/s), so
// the default would rightly fetch the rest in one request. The benchmark shows the default's choice.
const RANGES = { chunkBytes: 4 * MiB, connections: 4, fastBytesPerSecond: Number.POSITIVE_INFINITY };

describe("a large blob through a WAN-shaped link, in ranges", () => {
  let registry: TestRegistry;
  const proxies: ShapingProxy[] = [];
  const shaped = async (options: Partial<ShapingOptions> = {}) => {
    const proxy = await startShapingProxy({
      upstream: registry.host,
      rttMs: 20,
      connectionRate: 40e6,
      ...options,
    });
    proxies.push(proxy);
    return proxy;
  };

  beforeAll(async () => {
    registry = await startRegistry();
    const artifact = buildManifest({
      config: {
        mediaType: "application/vnd.docker.ai.model.config.v0.1+json",
        bytes: new TextEncoder().encode("{}"),
      },
      layers: [
        {
          mediaType: "application/vnd.docker.ai.gguf.v3",
          bytes: WEIGHT,
          annotations: { "org.cncf.model.filepath": "model.gguf" },
        },
      ],
    });
    await pushWithSkopeo(registry, artifact, "models/big", "v1");
  }, 120_000);
  afterAll(async () => {
    for (const proxy of proxies) await proxy.close();
    await registry?.stop();
  });

  it("fetches the weight as 10 ranges, 4 at a time, each byte once, and the model is exact", async () => {
    const proxy = await shaped();
    const model = await pullModel(`${proxy.host}/models/big:v1`, {
      store: createMemoryStore(),
      ranges: RANGES,
    });
    expect(sameBytes(new Uint8Array(await model.file("model.gguf").arrayBuffer()), WEIGHT)).toBe(true);
    const weightRanges = proxy.blobRanges.filter((r) => r !== "");
    expect(weightRanges).toHaveLength(10);
    expect(weightRanges[0]).toBe(`bytes=0-${4 * MiB - 1}`);
    expect(proxy.peakBlobRequests()).toBe(4);
    // Each byte once: the weight, plus the config blob.
    expect(proxy.blobBytes()).toBe(WEIGHT.byteLength + 2);
  });

  it("survives a lossy link: cut ranges are asked again from where they stopped, within 1.05× the blob", async () => {
    const proxy = await shaped({ resets: { seed: 21, perMiB: 0.1 } });
    const model = await pullModel(`${proxy.host}/models/big:v1`, {
      store: createMemoryStore(),
      ranges: { ...RANGES, retries: 8 },
    });
    expect(sameBytes(new Uint8Array(await model.file("model.gguf").arrayBuffer()), WEIGHT)).toBe(true);
    expect(proxy.resets()).toBeGreaterThan(0);
    // A cut range costs what was in flight when it died, and one more request.
    expect(proxy.blobBytes()).toBeLessThanOrEqual(1.05 * WEIGHT.byteLength);
    expect(proxy.blobRanges.filter((r) => r !== "").length).toBe(10 + proxy.resets());
  });

  it("keeps every range that landed when the pulling process is killed (atOffsets): the next pull fetches only the holes", async () => {
    // 10 MB/s per connection: the store keeps up with the ranges, so they land as they come (a
    // store slower than the link holds the ranges ahead in memory, and a kill loses them).
    const proxy = await shaped({ connectionRate: 10e6 });
    const dir = await mkdtemp(join(tmpdir(), "oml-ranges-kill-"));
    const reference = `${proxy.host}/models/big:v1`;
    // A pull in its own process, killed (SIGKILL: no cleanup) at 70 %: half-way through the second
    // window of four ranges (at 50 % the first window has just ended, and the second not begun).
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        join(import.meta.dirname, "../support/ranged-pull.ts"),
        reference,
        dir,
        JSON.stringify({ ...RANGES, fastBytesPerSecond: 1e15, atOffsets: true }), // JSON has no Infinity
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const exited = new Promise((resolve) => child.once("exit", resolve));
    await new Promise<void>((resolve, reject) => {
      let buffered = "";
      child.stdout.on("data", (chunk: Buffer) => {
        buffered += chunk.toString();
        for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
          const event = JSON.parse(buffered.slice(0, nl)) as {
            loaded?: number;
            total?: number;
            done?: string;
          };
          buffered = buffered.slice(nl + 1);
          if (event.done) reject(new Error("the pull ended before it was killed"));
          if ((event.loaded ?? 0) > 0.7 * (event.total ?? 1)) resolve();
        }
      });
    });
    child.kill("SIGKILL");
    await exited;
    const before = proxy.blobBytes();
    const asked = proxy.blobRanges.length;
    const model = await pullModel(reference, {
      store: createFsStore(dir, { chunkSize: MiB, checkpointBytes: MiB }),
      ranges: { ...RANGES, atOffsets: true },
    });
    expect(sameBytes(new Uint8Array(await model.file("model.gguf").arrayBuffer()), WEIGHT)).toBe(true);
    // What the second pull asked for has gaps: ranges past the hashed prefix were kept.
    const spans = proxy.blobRanges
      .slice(asked)
      .map((r) => /^bytes=(\d+)-(\d+)$/.exec(r))
      .flatMap((m) => (m ? [[Number(m[1]), Number(m[2]) + 1] as const] : []))
      .sort((a, b) => a[0] - b[0]);
    const gaps = spans.filter((span, i) => i > 0 && span[0] > (spans[i - 1] as readonly [number, number])[1]);
    expect(gaps.length, JSON.stringify(spans)).toBeGreaterThan(0);
    // Lost to the kill: each range's bytes not yet written (under a store chunk each), what was
    // written after the last checkpoint (under two chunks), and what was in the sockets.
    const lost = proxy.blobBytes() - (WEIGHT.byteLength + 2);
    console.log(`killed at ${before} bytes fetched; ${lost} of them fetched again after the kill`);
    expect(lost).toBeLessThanOrEqual((RANGES.connections + 2) * MiB + 2 * MiB);
    await rm(dir, { recursive: true, force: true });
  });

  it("passes an upload through the shaped link, each byte once (the push benchmark's link)", async () => {
    const proxy = await shaped();
    const bytes = new Uint8Array(randomBytes(3 * MiB + 5));
    const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    const client = createRegistryClient();
    const blob = new Blob([bytes]).stream();
    await client.pushBlob(`${proxy.host}/models/pushed`, { digest, size: bytes.byteLength }, blob);
    expect(proxy.uploadBytes()).toBe(bytes.byteLength);
    expect(await createRegistryClient().blobExists(`${registry.host}/models/pushed`, { digest })).toBe(true);
  });

  it("fetches the weight in one request from a server that serves no ranges", async () => {
    const proxy = await shaped({ dropRanges: true });
    const model = await pullModel(`${proxy.host}/models/big:v1`, {
      store: createMemoryStore(),
      ranges: RANGES,
    });
    expect(sameBytes(new Uint8Array(await model.file("model.gguf").arrayBuffer()), WEIGHT)).toBe(true);
    // The config and the weight, one request each (the weight's with a Range the proxy dropped).
    expect(proxy.blobRanges).toHaveLength(2);
    expect(proxy.blobBytes()).toBe(WEIGHT.byteLength + 2);
  });
});
