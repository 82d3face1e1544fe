import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningServer, serveRegistryProxy } from "../../src/node/index.js";
import { pushWithSkopeo } from "../support/layout.js";
import { dockerV01, type ModelFixture } from "../support/models.js";
import { servePage, type TestPage } from "../support/page.js";
import { startRegistry, type TestRegistry, USER } from "../support/registry.js";

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
