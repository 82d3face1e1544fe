import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, serveRegistryProxy } from "../../src/node/index.js";
import { pushWithSkopeo, sameBytes, sha256 } from "../support/layout.js";
import { dockerV01, type ModelFixture } from "../support/models.js";
import { servePage, type TestPage } from "../support/page.js";
import { run } from "../support/process.js";
import { startRegistry, type TestRegistry, USER } from "../support/registry.js";
import { writeSafetensors } from "../support/safetensors.js";

describe("in Chromium, a v0.1 model pulled through the proxy, then opened again after a reload", () => {
  let registry: TestRegistry;
  let proxy: RunningServer;
  let page: TestPage;
  let fixture: ModelFixture;

  beforeAll(async () => {
    registry = await startRegistry({ auth: "token", redirectBlobs: true });
    fixture = await dockerV01();
    await pushWithSkopeo(registry, fixture.artifact, "private/tiny", "v1");
    proxy = await serveRegistryProxy({ allow: [registry.host], port: 0 });
    page = await servePage(join(import.meta.dirname, "../pages/pull-page.ts"));
  });
  afterAll(async () => {
    await page?.close();
    await proxy?.close();
    await registry?.stop();
  });

  it.each(["opfs", "idb"] as const)("%s", async (kind) => {
    const request = {
      kind,
      reference: `${registry.host}/private/tiny:v1`,
      proxy: proxy.url,
      registry: registry.host,
      ...USER,
    };
    const tab = await page.browser.newPage();
    await tab.goto(`${page.origin}/`);
    await tab.waitForFunction(() => typeof window.pull === "function");
    registry.blobPaths.length = 0;
    const first = await tab.evaluate((r) => window.pull(r), request);
    expect(first.code, String(first.message)).toBeUndefined();
    expect(first).toMatchObject({
      digest: fixture.artifact.descriptor.digest,
      format: "docker-v0.1",
      weights: fixture.weights,
    });
    expect(first.config).toMatchObject({ hidden_size: 8 });
    expect(registry.blobPaths.length).toBe(fixture.artifact.blobs.size);

    await tab.reload();
    await tab.waitForFunction(() => typeof window.pull === "function");
    registry.blobPaths.length = 0;
    const again = await tab.evaluate((r) => window.pull(r), request);
    expect(again).toMatchObject({ digest: fixture.artifact.descriptor.digest, config: { hidden_size: 8 } });
    expect(registry.blobPaths).toEqual([]);
    await tab.close();
  });
});

describe("in Chromium, under a CSP that forbids workers", () => {
  let registry: TestRegistry;
  let proxy: RunningServer;
  let page: TestPage;

  beforeAll(async () => {
    registry = await startRegistry();
    await pushWithSkopeo(registry, (await dockerV01()).artifact, "public/tiny", "v1");
    proxy = await serveRegistryProxy({ allow: [registry.host], port: 0 });
    page = await servePage(join(import.meta.dirname, "../pages/pull-page.ts"), { csp: "worker-src 'none'" });
  });
  afterAll(async () => {
    await page?.close();
    await proxy?.close();
    await registry?.stop();
  });

  it("the OPFS store falls back to createWritable (the writer worker is refused) and the pull works", async () => {
    const tab = await page.browser.newPage();
    const refused: string[] = [];
    tab.on("console", (message) => {
      if (/Creating a worker .* violates .*worker-src/.test(message.text())) refused.push(message.text());
    });
    await tab.goto(`${page.origin}/`);
    await tab.waitForFunction(() => typeof window.pull === "function");
    const result = await tab.evaluate((r) => window.pull(r), {
      kind: "opfs",
      reference: `${registry.host}/public/tiny:v1`,
      proxy: proxy.url,
      registry: registry.host,
      username: "",
      password: "",
    } as const);
    expect(result.code, String(result.message)).toBeUndefined();
    expect(result.config).toMatchObject({ hidden_size: 8 });
    expect(refused.length).toBeGreaterThan(0);
    await tab.close();
  });
});

describe("in Chromium, a model packed in the page and pushed through the proxy to the real registry", () => {
  let registry: TestRegistry;
  let proxy: RunningServer;
  let page: TestPage;
  let dir: string;
  /** What the proxy sent upstream: method and path. */
  const upstream: { method: string; path: string }[] = [];

  beforeAll(async () => {
    registry = await startRegistry({ auth: "token" });
    proxy = await serveRegistryProxy({
      allow: [registry.host],
      port: 0,
      fetch: ((input: RequestInfo | URL, init?: RequestInit) => {
        const request = input instanceof Request ? input : undefined;
        upstream.push({
          method: (init?.method ?? request?.method ?? "GET").toUpperCase(),
          path: new URL(request?.url ?? String(input)).pathname,
        });
        return fetch(input, init);
      }) as typeof fetch,
    });
    page = await servePage(join(import.meta.dirname, "../pages/push-page.ts"));
    dir = await mkdtemp(join(tmpdir(), "oml-browser-push-"));
  });
  afterAll(async () => {
    await page?.close();
    await proxy?.close();
    await registry?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("pushes with token auth, large blobs PATCH by PATCH; skopeo reads back the same manifest digest and every byte", async () => {
    const MiB = 1024 * 1024;
    const weights = new Uint8Array(3 * MiB + 123).map((_, i) => (i * 7 + (i >> 11)) & 0xff);
    const files: Record<string, Uint8Array> = {
      "model.safetensors": writeSafetensors([
        { name: "w", dtype: "U8", shape: [weights.byteLength], data: weights },
      ]),
      "config.json": new TextEncoder().encode(JSON.stringify({ architectures: ["TinyForCausalLM"] })),
    };
    const tab = await page.browser.newPage();
    await tab.goto(`${page.origin}/`);
    await tab.waitForFunction(() => typeof window.pushFiles === "function");
    upstream.length = 0;
    const result = await tab.evaluate((r) => window.pushFiles(r), {
      files: Object.fromEntries(
        Object.entries(files).map(([path, bytes]) => [path, Buffer.from(bytes).toString("base64")]),
      ),
      reference: `${registry.host}/pushed/browser:v1`,
      proxy: proxy.url,
      registry: registry.host,
      ...USER,
      chunkSize: MiB,
    });
    await tab.close();
    expect(result.code, String(result.message)).toBeUndefined();
    const digest = result.digest as string;
    expect(result.pushed).toMatchObject({ digest, mounted: 0, skipped: 0 });

    // It went through the proxy, and the 3 MiB blob went up in three 1 MiB PATCHes and its last
    // piece in the PUT that ended its upload; one PUT per blob.
    const uploads = upstream.filter((r) => r.path.includes("/blobs/uploads/"));
    expect(uploads.filter((r) => r.method === "PATCH").length).toBeGreaterThanOrEqual(3);
    expect(uploads.filter((r) => r.method === "PUT")).toHaveLength(
      (result.pushed as { uploaded: number }).uploaded,
    );
    expect(upstream).toContainEqual({ method: "PUT", path: "/v2/pushed/browser/manifests/v1" });

    // skopeo, an independent client, reads what the page pushed.
    const creds = `${USER.username}:${USER.password}`;
    const raw = await new Promise<Buffer>((resolve, reject) =>
      execFile(
        "skopeo",
        [
          "inspect",
          "--raw",
          "--tls-verify=false",
          "--creds",
          creds,
          `docker://${registry.host}/pushed/browser:v1`,
        ],
        { encoding: "buffer" },
        (error, stdout) => (error ? reject(error) : resolve(stdout)),
      ),
    );
    expect(sha256(raw)).toBe(digest);
    const manifest = JSON.parse(raw.toString("utf8")) as {
      config: { digest: string };
      layers: { digest: string; annotations?: Record<string, string> }[];
    };
    const copied = join(dir, "copied");
    await run("skopeo", [
      "copy",
      "--quiet",
      "--src-tls-verify=false",
      "--src-creds",
      creds,
      `docker://${registry.host}/pushed/browser:v1`,
      `oci:${copied}:x`,
    ]);
    const blob = (d: string) => readFile(join(copied, "blobs", "sha256", d.slice(7)));
    expect(sha256(await blob(digest))).toBe(digest);
    const paths: string[] = [];
    for (const layer of manifest.layers) {
      const path = layer.annotations?.["org.cncf.model.filepath"] as string;
      paths.push(path);
      const theirs = await blob(layer.digest);
      expect(sameBytes(theirs, files[path] as Uint8Array), path).toBe(true);
    }
    expect(paths.sort()).toEqual(Object.keys(files).sort());
    expect(sha256(await blob(manifest.config.digest))).toBe(manifest.config.digest);
  });
});
