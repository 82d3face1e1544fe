import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryStore, createRegistryClient, createRemoteStore, type Store } from "../../src/index.js";
import { copyBlob } from "../../src/internals.js";
import { createFsStore } from "../../src/node/index.js";
import { blobOf, readAll } from "../support/blobs.js";
import { pushWithSkopeo, sameBytes, sampleModel } from "../support/layout.js";
import { run } from "../support/process.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";

/** A blob server that closes the connection half-way through the first response, and counts bytes sent. */
async function cuttingServer(bytes: Uint8Array, digest: string) {
  let served = 0;
  let requests = 0;
  const server: Server = createServer((req, res) => {
    if (req.url !== `/v2/cut/blobs/${digest}`) return void res.writeHead(404).end();
    requests++;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    const start = range ? Number(range[1]) : 0;
    const end = range?.[2] ? Number(range[2]) + 1 : bytes.byteLength;
    res.writeHead(range ? 206 : 200, {
      "content-length": end - start,
      ...(range ? { "content-range": `bytes ${start}-${end - 1}/${bytes.byteLength}` } : {}),
    });
    const body = bytes.subarray(start, end);
    if (requests === 1) {
      const half = Math.floor(body.byteLength / 2);
      served += half;
      res.write(body.subarray(0, half), () => res.socket?.destroy());
      return;
    }
    served += body.byteLength;
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    host: `127.0.0.1:${port}`,
    served: () => served,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

const stores: [string, () => Promise<{ store: Store; reopen: () => Store }>][] = [
  [
    "fs",
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "oml-fs-"));
      dirs.push(dir);
      return { store: createFsStore(dir), reopen: () => createFsStore(dir) };
    },
  ],
  [
    "memory",
    async () => {
      const store = createMemoryStore();
      return { store, reopen: () => store };
    },
  ],
];

describe.each(stores)("%s store over a real connection", (_, make) => {
  it("resumes after the server closed the connection half-way, fetching only the missing bytes", async () => {
    const { bytes, descriptor } = await blobOf(8 * 1024 * 1024 + 11);
    const server = await cuttingServer(bytes, descriptor.digest);
    try {
      const { store, reopen } = await make();
      const remote = createRemoteStore(`${server.host}/cut`, { retries: 0 });
      const first = await copyBlob(remote, store, descriptor).catch((e: unknown) => e);
      expect((first as { code?: string }).code).toMatch(/NETWORK|SIZE_MISMATCH/);
      expect(await store.exists(descriptor)).toBe(false);
      const result = await copyBlob(remote, reopen(), descriptor);
      expect(result.resumedFrom).toBeGreaterThan(0);
      expect(server.served()).toBe(bytes.byteLength);
      expect(sameBytes(await readAll(await reopen().fetch(descriptor)), bytes)).toBe(true);
    } finally {
      await server.close();
    }
  });
});

describe("fs store and skopeo", () => {
  let registry: TestRegistry;
  let dir: string;
  const model = sampleModel({ shardSize: 2 * 1024 * 1024 });

  beforeAll(async () => {
    registry = await startRegistry();
    await pushWithSkopeo(registry, model, "models/tiny", "v1");
    dir = await mkdtemp(join(tmpdir(), "oml-layout-store-"));
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("holds a pulled model as an OCI layout that skopeo copies to a registry unchanged", async () => {
    const client = createRegistryClient();
    const ref = `${registry.host}/models/tiny:v1`;
    const { digest, bytes, manifest, mediaType } = await client.getManifest(ref);
    const store = createFsStore(dir);
    const remote = createRemoteStore(ref, { client });
    for (const blob of [manifest.config, ...manifest.layers]) await copyBlob(remote, store, blob);
    await store.push({ digest, size: bytes.byteLength }, new Blob([bytes.slice()]).stream());
    await store.tag("tiny-v1", { mediaType, digest, size: bytes.byteLength });

    await run("skopeo", [
      "copy",
      "--quiet",
      "--dest-tls-verify=false",
      `oci:${dir}:tiny-v1`,
      `docker://${registry.host}/copied/tiny:v1`,
    ]);
    const copied = await client.getManifest(`${registry.host}/copied/tiny:v1`);
    expect(copied.digest).toBe(digest);
    const layer = copied.manifest.layers[0];
    if (!layer) throw new Error("no layer");
    const back = await readAll(await client.fetchBlob(`${registry.host}/copied/tiny`, layer));
    expect(sameBytes(back, model.blobs.get(layer.digest) as Uint8Array)).toBe(true);
  });
});
