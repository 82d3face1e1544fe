// Firefox (Debian's firefox-esr, headless, over WebDriver BiDi; see test/support/firefox.ts): the
// store contract for OPFS, IndexedDB and the Cache API run inside the browser; a pull through the
// proxy from a real registry with token auth (also under a CSP that refuses workers); a reload in the
// middle of a pull; two tabs sharing one download; gc beside a download another tab holds; a full
// quota; persistStorage unanswered; WebGPU where Firefox offers an adapter. One browser and one
// registry for the file; the quota and persist cases start a browser of their own (other prefs).
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Page } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toFloat32 } from "../../src/index.js";
import { type RunningServer, serveRegistryProxy } from "../../src/node/index.js";
import { type FirefoxPages, launchFirefox, serveFirefoxPages } from "../support/firefox.js";
import type { CaseResult } from "../support/in-page-vitest.js";
import { pushWithSkopeo } from "../support/layout.js";
import { dockerV01, type ModelFixture } from "../support/models.js";
import { startRegistry, type TestRegistry, USER } from "../support/registry.js";
import { COLS, ROWS, tensorSpecs, values } from "../support/tensor-model.js";

const MiB = 1024 * 1024;
const pages = join(import.meta.dirname, "../pages");
const support = join(import.meta.dirname, "../support");
const hex = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

let firefox: FirefoxPages;
let registry: TestRegistry;
let proxy: RunningServer;
let tiny: ModelFixture;
let big: ModelFixture;
/** Milliseconds the proxy waits before each 64 KiB of a blob body (0: full speed). */
let throttle = 0;

/** The proxy's upstream fetch: blob bodies (the redirect target's octet streams) slowed by `throttle`. */
const throttledFetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
  const response = await fetch(input, init);
  if (response.headers.get("content-type") !== "application/octet-stream" || !response.body) return response;
  const body = response.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      async transform(chunk, controller) {
        for (let at = 0; at < chunk.byteLength; at += 64 * 1024) {
          if (throttle) await new Promise((r) => setTimeout(r, throttle));
          controller.enqueue(chunk.subarray(at, at + 64 * 1024));
        }
      },
    }),
  );
  return new Response(body, { status: response.status, headers: response.headers });
}) as typeof fetch;

beforeAll(async () => {
  registry = await startRegistry({ auth: "token", redirectBlobs: true });
  tiny = await dockerV01();
  big = await dockerV01([
    new Uint8Array(6 * MiB).map((_, i) => (i * 7 + (i >> 12)) & 0xff),
    new Uint8Array(1000),
  ]);
  await pushWithSkopeo(registry, tiny.artifact, "private/tiny", "v1");
  await pushWithSkopeo(registry, big.artifact, "private/big", "v1");
  proxy = await serveRegistryProxy({ allow: [registry.host], port: 0, fetch: throttledFetch });
  firefox = await serveFirefoxPages(
    {
      contract: join(pages, "firefox-contract-page.ts"),
      pull: join(pages, "firefox-pull-page.ts"),
      "pull-csp": join(pages, "firefox-pull-page.ts"),
      quota: join(pages, "firefox-quota-page.ts"),
      webgpu: join(pages, "firefox-webgpu-page.ts"),
    },
    {
      alias: { vitest: join(support, "in-page-vitest.ts") },
      scripts: { "contract-worker": join(pages, "firefox-contract-worker.ts") },
      csp: { "pull-csp": "worker-src 'none'" },
    },
  );
});
afterAll(async () => {
  await firefox?.close();
  await proxy?.close();
  await registry?.stop();
});

describe("in Firefox, the store contract (test/support/store-contract.ts) runs in the page", () => {
  const CASES = readFileSync(join(support, "store-contract.ts"), "utf8").match(/^ {4}it\(/gm)?.length ?? 0;
  let tab: Page;
  beforeAll(async () => {
    tab = await firefox.open("contract", "contract");
  });
  afterAll(() => tab?.close());

  /** Runs every case of one store's contract, one page call each; fails with every failure. */
  async function contract(store: string, runner: "contract" | "workerContract") {
    const names = (
      await tab.evaluate((r) => window[r as "contract" | "workerContract"].list(), runner)
    ).filter((n) => n.startsWith(`${store} store contract > `));
    expect(CASES).toBeGreaterThan(10);
    expect(names).toHaveLength(CASES);
    const results: CaseResult[] = [];
    for (const name of names)
      results.push(
        await tab.evaluate(
          ([r, n]) => window[r as "contract" | "workerContract"].run(n as string),
          [runner, name],
        ),
      );
    const failed = results.filter((r) => r.error !== undefined);
    expect(failed.map((r) => `${r.name}\n${r.error}`).join("\n\n"), firefox.errors.join("\n")).toBe("");
    for (const r of results) expect(r.assertions, r.name).toBeGreaterThan(0);
  }

  it.each(["OPFS", "IndexedDB", "Cache API"])("%s", (store) => contract(store, "contract"));

  it("OPFS in the page appends through sync access handles in its writer worker (feature-detected)", async () => {
    expect(await tab.evaluate(() => window.opfsWriter())).toBe("sync access handles, in a writer worker");
  });

  it("OPFS in a dedicated worker (sync access handles used directly)", async () => {
    expect(await tab.evaluate(() => window.workerOpfsWriter())).toBe("sync access handles, directly");
    await contract("OPFS in a worker", "workerContract");
  });
});

describe("in Firefox, pulls through the proxy from the registry (token auth)", () => {
  const request = (kind: "opfs" | "idb", name: string, reference: string) => ({
    kind,
    name,
    reference: `${registry.host}/${reference}`,
    proxy: proxy.url,
    registry: registry.host,
    ...USER,
    chunkSize: MiB,
  });
  const fileHashes = (fixture: ModelFixture) =>
    Object.fromEntries(Object.entries(fixture.files).map(([path, bytes]) => [path, hex(bytes)]));
  /** The redirect target's requests for one blob, from `since`: the offset each asked from. */
  const requestsFor = (digest: string, since: number) =>
    registry.blobPaths
      .map((path, i) => ({ path, i, range: String(registry.blobRequests[i]?.range ?? "") }))
      .filter((r) => r.i >= since && r.path.includes(digest.slice("sha256:".length)))
      .map((r) => Number(/^bytes=(\d+)-/.exec(r.range)?.[1] ?? 0));

  it.each(["opfs", "idb"] as const)(
    "%s: pulls every file verified, and after a reload opens it again with no blob fetched",
    async (kind) => {
      const tab = await firefox.open("pull", "firefoxPull");
      const tokens = registry.tokenRequests.length;
      const since = registry.blobPaths.length;
      const first = await tab.evaluate(
        (r) => window.firefoxPull(r),
        request(kind, `pull-${kind}`, "private/tiny:v1"),
      );
      expect(first.code, String(first.message)).toBeUndefined();
      expect(first).toMatchObject({
        digest: tiny.artifact.descriptor.digest,
        format: "docker-v0.1",
        weights: tiny.weights,
        config: { hidden_size: 8 },
        files: fileHashes(tiny),
      });
      expect(registry.tokenRequests.length).toBeGreaterThan(tokens);
      expect(registry.blobPaths.length - since).toBe(tiny.artifact.blobs.size);

      await tab.reload();
      await tab.waitForFunction(() => typeof window.firefoxPull === "function");
      const after = registry.blobPaths.length;
      const again = await tab.evaluate(
        (r) => window.firefoxPull(r),
        request(kind, `pull-${kind}`, "private/tiny:v1"),
      );
      expect(again).toMatchObject({ digest: tiny.artifact.descriptor.digest, files: fileHashes(tiny) });
      expect(registry.blobPaths.length).toBe(after);
      await tab.close();
    },
  );

  it("opfs, under a CSP that forbids workers: falls back to createWritable (Firefox refuses the worker with an error event) and the pull works", async () => {
    const tab = await firefox.open("pull-csp", "firefoxPull");
    const started = Date.now();
    expect(await tab.evaluate(() => window.pullPageWriter())).toBe("createWritable");
    expect(Date.now() - started, "refused at once, not after the 5 s wait for a silent worker").toBeLessThan(
      3000,
    );
    const result = await tab.evaluate(
      (r) => window.firefoxPull(r),
      request("opfs", "csp", "private/tiny:v1"),
    );
    expect(result, String(result.message)).toMatchObject({
      digest: tiny.artifact.descriptor.digest,
      files: fileHashes(tiny),
    });
    await tab.close();
  });

  it.each(["opfs", "idb"] as const)(
    "%s: a reload in the middle of a pull, then a pull that fetches only the missing bytes",
    async (kind) => {
      const [shard, shardBytes] = [...big.artifact.blobs].find(([, b]) => b.byteLength === 6 * MiB) ?? [];
      const tab = await firefox.open("pull", "firefoxPull");
      const since = registry.blobPaths.length;
      throttle = 15; // about 4 MB/s: the 6 MiB shard takes a second and a half
      try {
        void tab
          .evaluate((r) => window.firefoxPull(r), request(kind, `reload-${kind}`, "private/big:v1"))
          .catch(() => {});
        await tab.waitForFunction(() => window.progress > 0.4, { timeout: 20_000, polling: 20 });
        await tab.reload();
      } finally {
        throttle = 0;
      }
      await tab.waitForFunction(() => typeof window.firefoxPull === "function");
      const reloaded = registry.blobPaths.length;
      const sentBefore = registry.blobBytes();
      const result = await tab.evaluate(
        (r) => window.firefoxPull(r),
        request(kind, `reload-${kind}`, "private/big:v1"),
      );
      expect(result.code, String(result.message)).toBeUndefined();
      expect(result).toMatchObject({ digest: big.artifact.descriptor.digest, files: fileHashes(big) });
      expect(
        requestsFor(shard as string, since).slice(0, 1),
        "the shard was being fetched at the reload",
      ).toEqual([0]);
      const resumed = requestsFor(shard as string, reloaded);
      expect(resumed, "one request for the rest of the shard").toHaveLength(1);
      const from = resumed[0] as number;
      // Checkpoints every MiB, and 40 % of the model was in before the reload.
      expect(from).toBeGreaterThanOrEqual(MiB);
      // After the reload the redirect target sent the shard's rest and whatever else was missing: less
      // than the shard.
      const sentAfter = registry.blobBytes() - sentBefore;
      expect(sentAfter).toBeGreaterThanOrEqual((shardBytes?.byteLength ?? 0) - from);
      expect(sentAfter).toBeLessThan(shardBytes?.byteLength ?? 0);
      await tab.close();
    },
  );

  it("opfs: two tabs pulling the same model download each blob once (Web Locks across tabs)", async () => {
    const [a, b] = [await firefox.open("pull", "firefoxPull"), await firefox.open("pull", "firefoxPull")];
    const since = registry.blobPaths.length;
    throttle = 2;
    try {
      const results = await Promise.all(
        [a, b].map((tab) =>
          tab.evaluate((r) => window.firefoxPull(r), request("opfs", "two-tabs", "private/big:v1")),
        ),
      );
      for (const result of results)
        expect(result, String(result.message)).toMatchObject({
          digest: big.artifact.descriptor.digest,
          files: fileHashes(big),
        });
    } finally {
      throttle = 0;
    }
    const paths = registry.blobPaths.slice(since);
    expect(paths).toHaveLength(big.artifact.blobs.size);
    expect(new Set(paths).size).toBe(big.artifact.blobs.size);
    await a.close();
    await b.close();
  });
});

describe("in Firefox, gc and a download another tab is writing", () => {
  it.each(["opfs", "idb", "cache"] as const)(
    "%s: kept however old while that tab holds it (Web Locks), stale once the tab is closed",
    async (kind) => {
      const [writer, cleaner] = [
        await firefox.open("pull", "stalledPush"),
        await firefox.open("pull", "gcIngests"),
      ];
      const name = `gc-${kind}`;
      const digest = await writer.evaluate(([k, n]) => window.stalledPush(k, n), [kind, name] as const);
      expect(await cleaner.evaluate(([k, n]) => window.gcIngests(k, n), [kind, name] as const)).toEqual([]);
      await writer.close();
      await expect
        .poll(() => cleaner.evaluate(([k, n]) => window.gcIngests(k, n), [kind, name] as const), {
          timeout: 10_000,
        })
        .toEqual([digest]);
      await cleaner.close();
    },
  );
});

describe("in Firefox, persistStorage", () => {
  it("answers false, and soon, where Firefox asks the user and nobody answers", async () => {
    // Without the testing prefs, persist() is a permission prompt: headless, it never settles.
    const bare = await launchFirefox({
      "dom.storageManager.prompt.testing": false,
      "dom.storageManager.prompt.testing.allow": false,
    });
    try {
      const tab = await bare.browser.newPage();
      await tab.goto(`${firefox.origin}/pull/`);
      await tab.waitForFunction(() => typeof window.firefoxPersist === "function");
      const unanswered = await tab.evaluate(() =>
        Promise.race([
          navigator.storage.persist().then(String),
          new Promise<string>((r) => setTimeout(() => r("no answer"), 1000)),
        ]),
      );
      expect(unanswered).toBe("no answer");
      const started = Date.now();
      expect(await tab.evaluate(() => window.firefoxPersist())).toBe(false);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await bare.close();
    }
  });

  it("answers true where Firefox grants it (the testing prefs allow)", async () => {
    const tab = await firefox.open("pull", "firefoxPersist");
    expect(await tab.evaluate(() => window.firefoxPersist())).toBe(true);
    expect(await tab.evaluate(() => navigator.storage.persisted())).toBe(true);
    await tab.close();
  });
});

describe("in Firefox, an origin's quota running out half-way through a write", () => {
  // dom.quotaManager.temporaryStorage.fixedLimit is the whole of temporary storage, in KiB; an
  // origin gets a fifth of it, here 10 MiB (what navigator.storage.estimate() reports as its quota).
  let small: Awaited<ReturnType<typeof launchFirefox>>;
  let tab: Page;
  beforeAll(async () => {
    small = await launchFirefox({ "dom.quotaManager.temporaryStorage.fixedLimit": 50 * 1024 });
    tab = await small.browser.newPage();
    await tab.goto(`${firefox.origin}/quota/`);
    await tab.waitForFunction(() => typeof window.overfill === "function");
    const { quota } = await tab.evaluate(() => navigator.storage.estimate());
    expect(quota).toBe(10 * MiB);
  });
  afterAll(() => small?.close());

  it.each(["opfs", "idb", "cache"] as const)("%s: QUOTA_EXCEEDED, and nothing listed", async (kind) => {
    const result = await tab.evaluate(([k, size]) => window.overfill(k, size), [kind, 12 * MiB] as const);
    expect(result, JSON.stringify(result)).toMatchObject({ code: "QUOTA_EXCEEDED", listed: 0 });
  });
});

describe("in Firefox, WebGPU", () => {
  it("uploads every tensor bit-exact (F16/BF16 widened on the GPU) and runs a compute shader over it", async (context) => {
    const tab = await firefox.open("webgpu", "gpuCheck");
    const x = Array.from({ length: COLS }, (_, i) => (i % 5) - 2);
    const result = await tab.evaluate((v) => window.gpuCheck(v), x);
    await tab.close();
    if (result.adapter === null) {
      console.warn(`Firefox WebGPU skipped: ${result.reason}`);
      context.skip(`no WebGPU adapter in Firefox here: ${result.reason}`);
      return;
    }
    console.info(`Firefox WebGPU adapter: ${result.adapter}`);
    for (const spec of tensorSpecs()) {
      const expected =
        spec.dtype === "I32"
          ? [7, -1, 42]
          : Array.from(toFloat32(spec.dtype as "F32" | "F16" | "BF16", spec.data as Uint8Array));
      expect(result.tensors[spec.name], spec.name).toEqual(expected);
    }
    expect(result.loaded).toBe(tensorSpecs().reduce((n, t) => n + (t.data?.byteLength ?? 0), 0));
    const w = values(ROWS * COLS, 1);
    const cpu = Array.from({ length: ROWS }, (_, r) =>
      w.slice(r * COLS, (r + 1) * COLS).reduce((s, v, c) => s + v * (x[c] as number), 0),
    );
    expect(result.product).toEqual(cpu);
  });
});
