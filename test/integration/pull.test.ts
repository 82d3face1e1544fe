import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createRegistryClient,
  type OciError,
  openModel,
  type PullEvent,
  pullModel,
} from "../../src/index.js";
import { createFsStore } from "../../src/node/index.js";
import { pushWithSkopeo, sameBytes, sha256 } from "../support/layout.js";
import {
  dockerV01,
  dockerV02,
  kitOps,
  type ModelFixture,
  modelPackRaw,
  modelPackTarGzip,
  tarOf,
} from "../support/models.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";

async function expectFiles(model: Awaited<ReturnType<typeof pullModel>>, fixture: ModelFixture) {
  expect([...model.files.keys()].sort()).toEqual(Object.keys(fixture.files).sort());
  for (const [path, bytes] of Object.entries(fixture.files)) {
    expect(sameBytes(new Uint8Array(await model.file(path).arrayBuffer()), bytes), path).toBe(true);
  }
  expect(model.weights).toEqual(fixture.weights);
}

describe("pullModel against the real registry", () => {
  let registry: TestRegistry;
  let dir: string;
  const fixtures: Record<string, ModelFixture> = {};

  beforeAll(async () => {
    registry = await startRegistry({ redirectBlobs: true });
    const made = {
      "docker-v0.1": await dockerV01(),
      "docker-v0.2": await dockerV02(),
      modelpack: await modelPackRaw(),
      "modelpack-targz": await modelPackTarGzip(),
      kitops: await kitOps(),
    };
    for (const [name, fixture] of Object.entries(made)) {
      fixtures[name] = fixture;
      await pushWithSkopeo(registry, fixture.artifact, `models/${name}`, "v1");
    }
    dir = await mkdtemp(join(tmpdir(), "oml-pull-"));
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it.each([
    ["docker-v0.1", "docker-v0.1"],
    ["docker-v0.2", "docker-v0.2"],
    ["modelpack", "modelpack"],
    ["modelpack-targz", "modelpack"],
    ["kitops", "kitops"],
  ])("pulls %s and every file matches byte for byte", async (name, format) => {
    const fixture = fixtures[name] as ModelFixture;
    const store = createFsStore(join(dir, name));
    const events: PullEvent[] = [];
    const model = await pullModel(`${registry.host}/models/${name}:v1`, {
      store,
      onProgress: (e) => events.push(e),
    });
    expect(model.format).toBe(format);
    expect(model.digest).toBe(fixture.artifact.descriptor.digest);
    await expectFiles(model, fixture);
    expect(model.config).toMatchObject({ hidden_size: 8 });
    const resolve = events.find((e) => e.type === "resolve");
    expect(resolve).toMatchObject({ type: "resolve", storedBytes: 0 });
    expect(events.at(-1)?.type).toBe("done");
    const again = await openModel(`${registry.host}/models/${name}:v1`, { store });
    expect(again.digest).toBe(model.digest);
  });

  it("stores a shard two models share once, and reuses it", async () => {
    const shared = new Uint8Array(64_000).fill(7);
    const a = await dockerV01([shared, new Uint8Array(100).fill(1)]);
    const b = await dockerV01([shared, new Uint8Array(100).fill(2)]);
    const sharedDigest = sha256(shared);
    // The shard, not the config (a and b have the same config blob too, and the same config tar).
    expect(a.artifact.blobs.has(sharedDigest) && b.artifact.blobs.has(sharedDigest)).toBe(true);
    const onlyB = [...b.artifact.blobs.keys()].filter((d) => !a.artifact.blobs.has(d));
    expect(onlyB).toEqual([sha256(new Uint8Array(100).fill(2))]);
    await pushWithSkopeo(registry, a.artifact, "models/share-a", "v1");
    await pushWithSkopeo(registry, b.artifact, "models/share-b", "v1");
    const store = createFsStore(join(dir, "shared"));
    await pullModel(`${registry.host}/models/share-a:v1`, { store });
    registry.blobPaths.length = 0;
    const events: PullEvent[] = [];
    await pullModel(`${registry.host}/models/share-b:v1`, { store, onProgress: (e) => events.push(e) });
    // The second pull fetched only the blob a does not have; everything else, the shard included, was reused.
    expect(registry.blobPaths.map((p) => `sha256:${/[0-9a-f]{64}/.exec(p)?.[0]}`)).toEqual(onlyB);
    const done = events.find((e) => e.type === "done");
    const reused = [...b.artifact.blobs].filter(([d]) => a.artifact.blobs.has(d));
    const configDigest = JSON.parse(new TextDecoder().decode(b.artifact.bytes)).config.digest as string;
    expect(done?.type === "done" && done.reusedBytes).toBe(
      reused.reduce((n, [, bytes]) => n + bytes.byteLength, 0),
    );
    expect(reused.map(([d]) => d)).toContain(sharedDigest);
    expect(reused.map(([d]) => d)).toContain(configDigest);
    const files = await readdir(join(dir, "shared", "blobs", "sha256"));
    expect(files).toContain(sharedDigest.slice(7));
    expect(
      sameBytes(await readFile(join(dir, "shared", "blobs", "sha256", sharedDigest.slice(7))), shared),
    ).toBe(true);
  });

  it("opens a stored model by tag with one HEAD and no blob request, and by digest with no request at all", async () => {
    const store = createFsStore(join(dir, "reopen"));
    const ref = `${registry.host}/models/docker-v0.1:v1`;
    const model = await pullModel(ref, { store });
    registry.blobRequests.length = 0;
    const requests: string[] = [];
    const fetch = ((input: RequestInfo | URL, init?: RequestInit) => {
      requests.push(`${init?.method ?? "GET"} ${new URL(String(input)).pathname}`);
      return globalThis.fetch(input, init);
    }) as typeof globalThis.fetch;
    await pullModel(ref, { store, fetch });
    expect(requests).toEqual([`HEAD /v2/models/docker-v0.1/manifests/v1`]);
    requests.length = 0;
    await pullModel(`${registry.host}/models/docker-v0.1@${model.digest}`, { store, fetch });
    expect(requests).toEqual([]);
    expect(registry.blobRequests).toHaveLength(0);
  });

  it("fetches no weight layer in config-only mode", async () => {
    const store = createFsStore(join(dir, "config-only"));
    registry.blobPaths.length = 0;
    const fixture = fixtures["docker-v0.1"] as ModelFixture;
    const model = await pullModel(`${registry.host}/models/docker-v0.1:v1`, { store, weights: false });
    expect(model.complete).toBe(false);
    expect(await model.file("config.json").json()).toMatchObject({ hidden_size: 8 });
    const weightDigests = [...fixture.artifact.blobs.keys()].slice(1, 3);
    const requested = registry.blobPaths.join(" ");
    // the config blob and the config tar were fetched; neither shard was
    expect(registry.blobPaths).toHaveLength(2);
    for (const digest of weightDigests) expect(requested).not.toContain(digest.slice(7));
    expect(() => model.file(fixture.weights[0] as string)).toThrow(/config-only/);
    const full = await pullModel(`${registry.host}/models/docker-v0.1:v1`, { store });
    expect(full.complete).toBe(true);
  });

  it.each<[string, () => Promise<Uint8Array>]>([
    ["a traversal", () => tarOf({ "../../escape.txt": new Uint8Array([1]) })],
    ["an absolute path", () => tarOf({ "/tmp/escape.txt": new Uint8Array([1]) })],
    [
      "a symlink",
      () =>
        tarOf({}, [{ header: { name: "config.json", size: 0, type: "symlink", linkname: "/etc/passwd" } }]),
    ],
    [
      "a hardlink",
      () => tarOf({}, [{ header: { name: "config.json", size: 0, type: "link", linkname: "x" } }]),
    ],
    [
      "too many entries",
      () => tarOf(Object.fromEntries(Array.from({ length: 10_001 }, (_, i) => [`f${i}`, new Uint8Array(0)]))),
    ],
    [
      "a truncated archive",
      async () => (await tarOf({ "config.json": new Uint8Array(5000) })).subarray(0, 1500),
    ],
  ])(
    "refuses a config tar with %s: UNSAFE_ARCHIVE, the model not listed, nothing written",
    async (name, make) => {
      const fixture = await dockerV01(undefined, await make());
      const repository = `hostile/${name.replace(/\W+/g, "-")}`;
      await pushWithSkopeo(registry, fixture.artifact, repository, "v1");
      const storeDir = join(dir, repository);
      const store = createFsStore(storeDir);
      const error = (await pullModel(`${registry.host}/${repository}:v1`, { store }).catch(
        (e: unknown) => e,
      )) as OciError;
      expect(error.code).toBe("UNSAFE_ARCHIVE");
      expect(
        await openModel(`${registry.host}/${repository}:v1`, { store }).catch((e: OciError) => e.code),
      ).toBe("NOT_FOUND");
      expect(await store.tags()).toEqual(new Map());
      const tarDigest = [...fixture.artifact.blobs.keys()].at(-1) as string;
      expect(await store.exists({ digest: tarDigest })).toBe(false);
      // What was kept is at most the config and the shards (the pull stops the layers still in
      // flight when the tar is refused, so which of them were stored depends on timing): not the
      // tar, nor any file of it. (A pull stores files by digest, never under a name from the tar;
      // hostile-paths.test.ts looks where a traversal through --output would land.)
      const kept = (await readdir(join(storeDir, "blobs", "sha256"))).map((f) => `sha256:${f}`);
      const others = [...fixture.artifact.blobs.keys()].filter((d) => d !== tarDigest);
      expect(kept.filter((d) => !others.includes(d))).toEqual([]);
    },
  );

  it("shares one download between concurrent pulls of the same model", async () => {
    const store = createFsStore(join(dir, "concurrent"));
    registry.blobRequests.length = 0;
    const ref = `${registry.host}/models/modelpack:v1`;
    const [a, b] = await Promise.all([pullModel(ref, { store }), pullModel(ref, { store })]);
    expect(a).toBe(b);
    const fixture = fixtures.modelpack as ModelFixture;
    expect(registry.blobRequests).toHaveLength(fixture.artifact.blobs.size);
  });

  it("refuses a manifest that names no model files sensibly: NOT_FOUND for a missing tag", async () => {
    const client = createRegistryClient();
    const error = (await pullModel(`${registry.host}/models/none:v1`, {
      client,
      store: createFsStore(join(dir, "none")),
    }).catch((e: unknown) => e)) as OciError;
    expect(error.code).toBe("NOT_FOUND");
  });
});
