import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import {
  createMemoryStore,
  createRegistryClient,
  MediaType,
  openModel,
  packModel,
  pullModel,
  type Store,
} from "../../src/index.js";
import { equal } from "../support/blobs.js";
import { failure } from "../support/failure.js";
import { tarOf } from "../support/models.js";
import { writeSafetensors } from "../support/safetensors.js";

const encoder = new TextEncoder();
const sha = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const REF = "registry.test/ns/model:v1";

/** `{"a":"xxx…"}`, `size` bytes of valid JSON. */
const hugeJson = (size: number) => encoder.encode(`{"a":"${"x".repeat(size - 8)}"}`);

describe("listTags stops buffering", () => {
  it("refuses a registry that sends page after page of 4 MiB (a total cap, not 10,000 pages)", async () => {
    const tags = Array.from({ length: 31_000 }, (_, i) => `${String(i).padStart(8, "0")}-${"t".repeat(110)}`);
    const page = JSON.stringify({ name: "ns/model", tags });
    let served = 0;
    let pages = 0;
    const fetch = (async () => {
      served += page.length;
      pages++;
      const more = pages < 40; // 40 pages: 160 MiB
      return new Response(page, {
        headers: more ? { link: `</v2/ns/model/tags/list?last=${pages}>; rel="next"` } : {},
      });
    }) as typeof globalThis.fetch;
    const error = await failure(createRegistryClient({ fetch }).listTags(REF));
    expect(error.code).toBe("REGISTRY_ERROR");
    expect(error.message).toMatch(/^Cannot list tags of registry.test\/ns\/model: .*limit/);
    expect(served).toBeLessThanOrEqual(64 * 1024 * 1024 + 2 * page.length);
  });

  it("refuses a next link that points back at a page already read", async () => {
    let requests = 0;
    const fetch = (async () => {
      requests++;
      return Response.json(
        { tags: ["a"] },
        { headers: { link: '</v2/ns/model/tags/list?last=a>; rel="next"' } },
      );
    }) as typeof globalThis.fetch;
    const error = await failure(createRegistryClient({ fetch }).listTags(REF));
    expect(error.code).toBe("REGISTRY_ERROR");
    expect(error.message).toMatch(/loop/);
    expect(requests).toBe(2);
  });
});

/** A registry double holding one manifest and its blobs; the paths it is asked for go to `requests`. */
function registryWith(
  config: { mediaType: string; bytes: Uint8Array },
  layers: { mediaType: string; bytes: Uint8Array; annotations?: Record<string, string> }[],
  requests: string[] = [],
) {
  const blobs = new Map<string, Uint8Array>();
  const describe = (b: { mediaType: string; bytes: Uint8Array; annotations?: Record<string, string> }) => {
    const digest = sha(b.bytes);
    blobs.set(digest, b.bytes);
    return {
      mediaType: b.mediaType,
      digest,
      size: b.bytes.byteLength,
      ...(b.annotations ? { annotations: b.annotations } : {}),
    };
  };
  const manifest = encoder.encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: describe(config),
      layers: layers.map(describe),
    }),
  );
  return (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    const path = new URL(request.url).pathname;
    requests.push(path);
    if (path.includes("/manifests/"))
      return new Response(manifest, {
        headers: { "content-type": MediaType.OciManifest, "docker-content-digest": sha(manifest) },
      });
    const blob = blobs.get(path.split("/").at(-1) as string);
    return blob ? new Response(blob as Uint8Array<ArrayBuffer>) : new Response("", { status: 404 });
  }) as typeof globalThis.fetch;
}

const weights = writeSafetensors([{ name: "w", dtype: "F32", shape: [2] }]);

describe("the config blob and config.json are capped", () => {
  /** Nothing of a refused pull is in the store: no blob, no record, no tag. */
  async function expectEmpty(store: Store) {
    expect(await store.list()).toEqual([]);
    expect([...(await store.tags()).keys()]).toEqual([]);
  }

  it("refuses a config blob over 4 MiB before fetching any blob", async () => {
    const requests: string[] = [];
    const fetch = registryWith(
      { mediaType: "application/vnd.docker.ai.model.config.v0.1+json", bytes: hugeJson(20 * 1024 * 1024) },
      [{ mediaType: "application/vnd.docker.ai.safetensors", bytes: weights }],
      requests,
    );
    const store = createMemoryStore();
    const error = await failure(pullModel(REF, { fetch, store }));
    expect(error.code).toBe("MANIFEST_INVALID");
    expect(error.message).toMatch(/^Cannot pull .*config blob .*limit/);
    expect(requests.filter((p) => p.includes("/blobs/"))).toEqual([]);
    await expectEmpty(store);
  });

  it("refuses a config.json layer over 16 MiB before fetching any blob", async () => {
    const requests: string[] = [];
    const fetch = registryWith(
      { mediaType: "application/vnd.docker.ai.model.config.v0.2+json", bytes: encoder.encode("{}") },
      [
        {
          mediaType: "application/vnd.docker.ai.safetensors",
          bytes: weights,
          annotations: { "org.cncf.model.filepath": "model.safetensors" },
        },
        {
          mediaType: "application/vnd.docker.ai.model.file",
          bytes: hugeJson(20 * 1024 * 1024),
          annotations: { "org.cncf.model.filepath": "config.json" },
        },
      ],
      requests,
    );
    const store = createMemoryStore();
    const error = await failure(pullModel(REF, { fetch, store, weights: false }));
    expect(error.code).toBe("UNSUPPORTED_ARTIFACT");
    expect(error.message).toMatch(/^Cannot pull .*config\.json.*limit/);
    expect(requests.filter((p) => p.includes("/blobs/"))).toEqual([]);
    await expectEmpty(store);
  });

  it("refuses a config.json over 16 MiB from a config archive before writing the model record", async () => {
    const fetch = registryWith(
      { mediaType: "application/vnd.docker.ai.model.config.v0.1+json", bytes: encoder.encode("{}") },
      [
        { mediaType: "application/vnd.docker.ai.safetensors", bytes: weights },
        {
          mediaType: "application/vnd.docker.ai.vllm.config.tar",
          bytes: await tarOf({ "config.json": hugeJson(20 * 1024 * 1024) }),
        },
      ],
    );
    const store = createMemoryStore();
    const error = await failure(pullModel(REF, { fetch, store }));
    expect(error.code).toBe("UNSUPPORTED_ARTIFACT");
    expect(error.message).toMatch(/^Cannot pull .*config\.json.*limit/);
    // Its size is known only once the archive is read, but no record or tag points at the model.
    expect([...(await store.tags()).keys()]).toEqual([]);
    expect((await failure(openModel(REF, { store }))).code).toBe("NOT_FOUND");
  });

  it("refuses to pack a config.json over 16 MiB", async () => {
    const file = (path: string, bytes: Uint8Array) => ({
      path,
      size: bytes.byteLength,
      stream: async (offset = 0, length = bytes.byteLength - offset) =>
        new Blob([bytes.subarray(offset, offset + length) as Uint8Array<ArrayBuffer>]).stream(),
    });
    const error = await failure(
      packModel([file("model.safetensors", weights), file("config.json", hugeJson(20 * 1024 * 1024))], {
        store: createMemoryStore(),
      }),
    );
    expect(error.code).toBe("INVALID_ARGUMENT");
    expect(error.message).toMatch(/^Cannot pack config\.json: .*limit/);
  });

  it("refuses a model.safetensors.index.json over 64 MiB when indexing tensors", async () => {
    const fetch = registryWith(
      { mediaType: "application/vnd.docker.ai.model.config.v0.2+json", bytes: encoder.encode("{}") },
      [
        {
          mediaType: "application/vnd.docker.ai.safetensors",
          bytes: weights,
          annotations: { "org.cncf.model.filepath": "model.safetensors" },
        },
        {
          mediaType: "application/vnd.docker.ai.model.file",
          bytes: hugeJson(65 * 1024 * 1024),
          annotations: { "org.cncf.model.filepath": "model.safetensors.index.json" },
        },
      ],
    );
    const model = await pullModel(REF, { fetch, store: createMemoryStore() });
    const error = await failure(model.tensorIndex());
    expect(error.code).toBe("UNSUPPORTED_ARTIFACT");
    expect(error.message).toMatch(/index\.json.*limit/);
  });
});

describe("a raw layer compressed as a whole (KitOps .raw+gzip) is bounded like an archive", () => {
  const limit = 1024 * 1024;
  const layerOf = (size: number) => ({
    mediaType: "application/vnd.kitops.modelkit.dataset.v1.raw+gzip",
    bytes: new Uint8Array(gzipSync(new Uint8Array(size))),
    annotations: { "org.cncf.model.filepath": "data.bin" },
  });
  const config = { mediaType: "application/vnd.kitops.modelkit.config.v1+json", bytes: encoder.encode("{}") };

  it("unpacks one of exactly maxTotalBytes", async () => {
    const store = createMemoryStore();
    const model = await pullModel(REF, {
      fetch: registryWith(config, [layerOf(limit)]),
      store,
      archive: { maxTotalBytes: limit },
    });
    expect(model.files.get("data.bin")?.size).toBe(limit);
    // equal(), not toEqual: vitest compares a 1 MiB array element by element in ~3 s (CI timed out).
    expect(equal(new Uint8Array(await model.file("data.bin").arrayBuffer()), new Uint8Array(limit))).toBe(
      true,
    );
  });

  it("refuses a gzip bomb past maxTotalBytes: nothing recorded, the layer not kept", async () => {
    const bomb = layerOf(limit + 1);
    const store = createMemoryStore();
    const error = await failure(
      pullModel(REF, { fetch: registryWith(config, [bomb]), store, archive: { maxTotalBytes: limit } }),
    );
    expect(error.code).toBe("UNSAFE_ARCHIVE");
    expect(error.message).toMatch(/it decompresses to more than 1048576 bytes; nothing of it was kept/);
    expect([...(await store.tags()).keys()]).toEqual([]);
    expect(await store.exists({ digest: sha(bomb.bytes) })).toBe(false);
    expect(await openModel(REF, { store }).catch((e) => e.code)).toBe("NOT_FOUND");
  });
});
