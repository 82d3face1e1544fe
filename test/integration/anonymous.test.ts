import { readFile, writeFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRegistryClient, type ImageManifest, OciError } from "../../src/index.js";
import { createNodeHasher } from "../../src/node/index.js";
import { buildIndex, buildManifest, pushWithSkopeo, sameBytes, sampleModel } from "../support/layout.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

describe("registry client against CNCF Distribution, anonymous", () => {
  let registry: TestRegistry;
  const model = sampleModel();

  beforeAll(async () => {
    registry = await startRegistry();
    await pushWithSkopeo(registry, model, "models/tiny", "v1");
  });
  afterAll(() => registry?.stop());

  it("fetches a manifest by tag and by digest, byte for byte", async () => {
    const client = createRegistryClient();
    const byTag = await client.getManifest(`${registry.host}/models/tiny:v1`);
    expect(byTag.digest).toBe(model.descriptor.digest);
    expect(byTag.bytes).toEqual(new Uint8Array(model.bytes));
    const byDigest = await client.getManifest(`${registry.host}/models/tiny@${model.descriptor.digest}`);
    expect(byDigest.digest).toBe(model.descriptor.digest);
    expect(byDigest.manifest.layers).toHaveLength(3);
  });

  it("streams every blob verified, with any hasher", async () => {
    const manifest = (await createRegistryClient().getManifest(`${registry.host}/models/tiny:v1`))
      .manifest as ImageManifest;
    for (const createHasher of [undefined, createNodeHasher]) {
      const client = createRegistryClient(createHasher ? { createHasher } : {});
      for (const layer of manifest.layers) {
        const bytes = await collect(await client.fetchBlob(`${registry.host}/models/tiny`, layer));
        expect(sameBytes(bytes, model.blobs.get(layer.digest) as Uint8Array)).toBe(true);
      }
    }
  });

  it("resumes a blob from an offset with a re-hashed prefix or saved hasher state", async () => {
    const client = createRegistryClient();
    const layer = ((await client.getManifest(`${registry.host}/models/tiny:v1`)).manifest as ImageManifest)
      .layers[0];
    if (!layer) throw new Error("no layer");
    const full = model.blobs.get(layer.digest) as Uint8Array;
    const offset = 1_000_003;
    const prefix = new Blob([full.slice(0, offset)]).stream();
    const rest = await collect(
      await client.fetchBlob(`${registry.host}/models/tiny`, layer, { offset, prefix }),
    );
    expect(sameBytes(rest, full.subarray(offset))).toBe(true);

    const { createWasmHasher } = await import("../../src/index.js");
    const first = await createWasmHasher("sha256");
    await first.update(full.subarray(0, offset));
    const state = first.save?.() as Uint8Array;
    const resumed = await createWasmHasher("sha256");
    resumed.load?.(state);
    const again = await collect(
      await client.fetchBlob(`${registry.host}/models/tiny`, layer, { offset, hasher: resumed }),
    );
    expect(sameBytes(again, full.subarray(offset))).toBe(true);
  });

  it("fails with DIGEST_MISMATCH when the registry's stored bytes were altered", async () => {
    const victim = sampleModel({ shardSize: 4096 });
    await pushWithSkopeo(registry, victim, "models/altered", "v1");
    const layer = (JSON.parse(new TextDecoder().decode(victim.bytes)) as ImageManifest).layers[0];
    if (!layer) throw new Error("no layer");
    const path = registry.blobPath(layer.digest);
    const bytes = await readFile(path);
    bytes[100] = (bytes[100] ?? 0) ^ 0xff;
    await writeFile(path, bytes);
    const stream = await createRegistryClient().fetchBlob(`${registry.host}/models/altered`, layer);
    const error = await collect(stream).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OciError);
    expect((error as OciError).code).toBe("DIGEST_MISMATCH");
  });

  it("resolves an index pushed by skopeo to the model manifest inside it (by config media type)", async () => {
    const image = buildManifest({
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        bytes: new TextEncoder().encode("{}"),
      },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", bytes: new Uint8Array(512) }],
    });
    const artifact = sampleModel({ shardSize: 100 });
    const index = buildIndex([
      { artifact: image, platform: { os: "linux", architecture: "amd64" } },
      { artifact },
    ]);
    await pushWithSkopeo(registry, index, "models/multi", "v1");
    const result = await createRegistryClient().getManifest(`${registry.host}/models/multi:v1`);
    expect(result.digest).toBe(artifact.descriptor.digest);
    expect(result.index?.digest).toBe(index.descriptor.digest);
    const raw = await createRegistryClient().getManifest(`${registry.host}/models/multi:v1`, {
      resolveIndex: false,
    });
    expect(raw.mediaType).toBe("application/vnd.oci.image.index.v1+json");
  });

  it("answers NOT_FOUND for a missing tag and lists tags", async () => {
    const client = createRegistryClient();
    const error = await client.getManifest(`${registry.host}/models/tiny:nope`).catch((e: unknown) => e);
    expect((error as OciError).code).toBe("NOT_FOUND");
    expect((error as OciError).status).toBe(404);
    await pushWithSkopeo(registry, model, "models/tiny", "v2");
    expect((await client.listTags(`${registry.host}/models/tiny`, { pageSize: 1 })).sort()).toEqual([
      "v1",
      "v2",
    ]);
  });
});
