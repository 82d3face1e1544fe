// The wllama adapter in Node, against wllama's own CacheManager and ModelManager (from npm) and a
// memory store: the storage backend's contract, models shown to wllama with no request, verified
// writes, gc and listModels beside wllama's names, and the loader's order and errors with a fake
// Wllama. The browser test (test/browser/wllama.browser.test.ts) runs real inference.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { CacheManager, ModelManager, ModelValidationStatus } from "@wllama/wllama";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  createWllamaStorage,
  ggufBlobs,
  loadWllamaModel,
  WLLAMA_ENTRY_TYPE,
  wllamaCacheKey,
  wllamaModelUrls,
} from "../../src/adapters/wllama.js";
import {
  createMemoryStore,
  listModels,
  Model,
  type ModelRecord,
  packModel,
  pullModel,
  type Store,
} from "../../src/index.js";
import { createLayoutHandler } from "../../src/node/index.js";
import { failure } from "../support/failure.js";
import { buildManifest } from "../support/layout.js";
import { tarOf } from "../support/models.js";

const FIXTURES = join(import.meta.dirname, "../fixtures/wllama");
const sha = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const stream = (b: Uint8Array) => new Blob([b as Uint8Array<ArrayBuffer>]).stream();
const bytesOf = async (blob: Blob | null) => new Uint8Array(await (blob as Blob).arrayBuffer());
const text = (s: string) => new TextEncoder().encode(s);

afterEach(() => {
  vi.unstubAllGlobals();
});

/** Packs GGUF files as a Docker v0.1 model and pulls it into a fresh memory store (no network). */
async function pulled(files: Record<string, Uint8Array>, reference = "registry.test/ai/tiny:v1") {
  const source = createMemoryStore();
  const packFiles = Object.entries(files).map(([path, bytes]) => ({
    path,
    size: bytes.byteLength,
    stream: async (offset = 0, length = bytes.byteLength - offset) =>
      stream(bytes.subarray(offset, offset + length)),
  }));
  await packModel(packFiles, { format: "docker-v0.1", store: source, tag: "v1" });
  const handler = createLayoutHandler(source);
  const store = createMemoryStore();
  const model = await pullModel(reference, {
    store,
    fetch: (async (input: RequestInfo | URL, init?: RequestInit) =>
      handler(new Request(input, init))) as typeof fetch,
  });
  return { store, model };
}

/** A model view over files pushed into `store` by hand (the shapes a pull never makes). */
async function handMade(
  store: Store,
  files: { path: string; bytes: Uint8Array; mediaType: string; stored?: boolean }[],
  view: Store = store,
) {
  const infos = [];
  for (const f of files) {
    const info = {
      path: f.path,
      digest: sha(f.bytes),
      size: f.bytes.byteLength,
      mediaType: f.mediaType,
      weight: true,
    };
    if (f.stored !== false) await store.push(info, stream(f.bytes));
    infos.push(info);
  }
  const record: ModelRecord = {
    reference: "registry.test/ai/hand:v1",
    digest: sha(text("manifest")),
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    format: "docker-v0.1",
    config: { mediaType: "application/json", digest: sha(text("{}")), size: 2 },
    files: infos,
    pending: [],
    pulledAt: "2026-12-01T00:00:00Z",
  };
  return new Model(view, record, {}, undefined);
}

const GGUF = "application/vnd.docker.ai.gguf.v3";

describe("the wllama storage backend", () => {
  it("names files with wllama's own key for a URL", async () => {
    const url = "https://huggingface.co/acme/tiny/resolve/main/tiny-Q8_0-00001-of-00002.gguf";
    expect(await wllamaCacheKey(url)).toBe(
      await new CacheManager([createWllamaStorage(createMemoryStore())]).getNameFromURL(url),
    );
    expect(await wllamaCacheKey(url)).toMatch(/^[0-9a-f]{40}_tiny-Q8_0-00001-of-00002\.gguf$/);
  });

  it("writes, reads, sizes, lists and deletes keys, metadata keys too, with nothing else in the way", async () => {
    const store = createMemoryStore();
    const storage = createWllamaStorage(store);
    expect(storage.isSupported()).toBe(true);
    expect(await storage.read("abc_model.gguf")).toBeNull();
    expect(await storage.getSize("abc_model.gguf")).toBe(-1);
    const data = text("GGUF and then some bytes");
    await storage.write("abc_model.gguf", stream(data));
    await storage.write("__metadata__abc_model.gguf", stream(text('{"originalSize":24}')));
    expect(await bytesOf(await storage.read("abc_model.gguf"))).toEqual(data);
    expect(await storage.getSize("abc_model.gguf")).toBe(data.byteLength);
    expect(await new Response(await storage.read("__metadata__abc_model.gguf")).json()).toEqual({
      originalSize: 24,
    });
    expect((await storage.list()).sort((a, b) => a.key.localeCompare(b.key))).toEqual([
      { key: "__metadata__abc_model.gguf", size: 19 },
      { key: "abc_model.gguf", size: data.byteLength },
    ]);
    // A write replaces what the key held.
    await storage.write("abc_model.gguf", stream(text("GGUF v2")));
    expect(await bytesOf(await storage.read("abc_model.gguf"))).toEqual(text("GGUF v2"));
    await storage.delete("abc_model.gguf");
    await storage.delete("never-there");
    expect(await storage.read("abc_model.gguf")).toBeNull();
    expect((await storage.list()).map((e) => e.key)).toEqual(["__metadata__abc_model.gguf"]);
    // Another prefix is another namespace in the same store.
    expect(await createWllamaStorage(store, { prefix: "other:" }).list()).toEqual([]);
  });

  it("verifies a write against the hint's SHA-256 (an OCI digest or bare hex) and keeps nothing that does not match", async () => {
    const store = createMemoryStore();
    const storage = createWllamaStorage(store);
    const data = text("GGUF the real file");
    const error = await failure(
      storage.write("k_model.gguf", stream(text("GGUF a forged file")), { sha256: sha(data).slice(7) }),
    );
    expect(error.code).toBe("DIGEST_MISMATCH");
    expect(error.message).toMatch(/^Cannot store wllama's k_model\.gguf: /);
    expect(await storage.list()).toEqual([]);
    expect(await store.list()).toEqual([]);
    await storage.write("k_model.gguf", stream(data), { sha256: sha(data) });
    expect(await store.exists({ digest: sha(data) })).toBe(true);
  });

  it("reads and sizes by the hint's digest whatever the key, and names the key after it for wllama's list", async () => {
    const store = createMemoryStore();
    const data = text("GGUF pulled from a registry");
    await store.push({ digest: sha(data), size: data.byteLength }, stream(data));
    const storage = createWllamaStorage(store);
    const hint = { sha256: sha(data).slice(7) };
    expect(await bytesOf(await storage.read("unknown_model.gguf", hint))).toEqual(data);
    expect(await storage.read("unknown_model.gguf", { sha256: "not hex" })).toBeNull();
    expect(await storage.list()).toEqual([]);
    expect(await storage.getSize("hf_model.gguf", hint)).toBe(data.byteLength);
    expect(await storage.list()).toEqual([{ key: "hf_model.gguf", size: data.byteLength }]);
    expect(await bytesOf(await storage.read("hf_model.gguf"))).toEqual(data);
    // A write of bytes the store holds reads nothing of its stream: only the name is written.
    let pulled = 0;
    const untouched = new ReadableStream<Uint8Array>(
      {
        pull() {
          pulled++;
          throw new Error("read");
        },
      },
      { highWaterMark: 0 },
    );
    await storage.write("again_model.gguf", untouched, hint);
    expect(pulled).toBe(0);
    expect(await bytesOf(await storage.read("again_model.gguf"))).toEqual(data);
  });

  it("keeps wllama's files through gc while named, frees them after delete, and stays out of listModels", async () => {
    const { store, model } = await pulled({
      "tiny-llama.gguf": await readFile(join(FIXTURES, "tiny-llama.gguf")),
    });
    const storage = createWllamaStorage(store);
    const data = text("GGUF written by wllama");
    await storage.write("w_model.gguf", stream(data));
    await storage.write("__metadata__w_model.gguf", stream(text("{}")));
    await storage.addModel(model);
    expect((await store.gc()).removedBlobs).toEqual([]);
    expect(await bytesOf(await storage.read("w_model.gguf"))).toEqual(data);
    const models = await listModels(store);
    expect(models.map((m) => m.record.reference)).toEqual([model.reference]);
    const entry = await store.resolve("wllama:w_model.gguf");
    expect(JSON.parse(await new Response(await store.fetch(entry as never)).text()).artifactType).toBe(
      WLLAMA_ENTRY_TYPE,
    );
    await storage.delete("w_model.gguf");
    expect((await store.gc()).removedBlobs).toContain(sha(data));
    // The pulled model's blobs stay: its record still names them.
    expect(await store.exists({ digest: model.files.get("model.gguf")?.digest as string })).toBe(true);
  });
});

describe("models shown to wllama's own ModelManager", () => {
  it("lists a pulled model under its oci:// URL, valid, opening the store's blobs, with no request", async () => {
    const file = await readFile(join(FIXTURES, "tiny-llama.gguf"));
    const { store, model } = await pulled({ "tiny-llama.gguf": file });
    const storage = createWllamaStorage(store);
    const url = await storage.addModel(model);
    expect(url).toBe(`oci://registry.test/ai/tiny@${model.digest}/model.gguf`);
    expect(wllamaModelUrls(model)).toEqual([url]);
    const fetch = vi.fn(async () => new Response(null, { status: 599 }));
    vi.stubGlobal("fetch", fetch);
    const manager = new ModelManager({ cacheManager: new CacheManager([storage]), logger: console });
    const [found, ...others] = await manager.getModels();
    expect(others).toEqual([]);
    expect(found?.url).toBe(url);
    expect(found?.validate()).toBe(ModelValidationStatus.VALID);
    expect(found?.size).toBe(file.byteLength);
    const blobs = await (found as NonNullable<typeof found>).open();
    expect(blobs).toHaveLength(1);
    expect(sha(await bytesOf(blobs[0] as Blob))).toBe(sha(file));
    // What loadModelFromUrl calls finds it and fetches nothing.
    expect((await manager.getModelOrDownload({ url })).files.map((f) => f.name)).toEqual([
      await wllamaCacheKey(url),
    ]);
    expect(fetch).not.toHaveBeenCalled();
  });

  it("names a GGUF served in place from a ModelPack tar layer by its SHA-256, stored once as a copy", async () => {
    const file = await readFile(join(FIXTURES, "tiny-llama.gguf"));
    const artifact = buildManifest({
      artifactType: "application/vnd.cncf.model.manifest.v1+json",
      config: {
        mediaType: "application/vnd.cncf.model.config.v1+json",
        bytes: text(JSON.stringify({ config: { format: "gguf" } })),
      },
      layers: [
        { mediaType: "application/vnd.cncf.model.weight.v1.tar", bytes: await tarOf({ "model.gguf": file }) },
      ],
    });
    const serve = (async (input: RequestInfo | URL) => {
      const path = new URL(input instanceof Request ? input.url : input).pathname;
      if (path.endsWith("/manifests/v1"))
        return new Response(artifact.bytes as BodyInit, {
          headers: { "content-type": artifact.descriptor.mediaType },
        });
      const bytes = artifact.blobs.get(path.slice(path.lastIndexOf("/") + 1));
      return bytes ? new Response(bytes as BodyInit) : new Response("", { status: 404 });
    }) as typeof fetch;
    const store = createMemoryStore();
    const model = await pullModel("registry.test/ai/tiny:v1", { store, fetch: serve });
    expect(model.files.get("model.gguf")?.layer).toBeDefined();
    expect(model.files.get("model.gguf")?.digest).toBeUndefined();
    const storage = createWllamaStorage(store);
    const url = await storage.addModel(model);
    const metadata = await storage.read(`__metadata__${await wllamaCacheKey(url)}`);
    expect(JSON.parse(new TextDecoder().decode(await bytesOf(metadata))).sha256).toBe(sha(file).slice(7));
    expect(sha(await bytesOf(await storage.read(await wllamaCacheKey(url))))).toBe(sha(file));
    expect(await store.exists({ digest: sha(file) })).toBe(true);
  });

  it("lists a split model as one model of two files in split order", async () => {
    const parts = ["tiny-llama-split-00001-of-00002.gguf", "tiny-llama-split-00002-of-00002.gguf"];
    const files = Object.fromEntries(
      await Promise.all(parts.map(async (p) => [p, await readFile(join(FIXTURES, p))])),
    );
    const { store, model } = await pulled(files);
    expect(model.weights).toEqual(["model-00001-of-00002.gguf", "model-00002-of-00002.gguf"]);
    const storage = createWllamaStorage(store);
    const url = await storage.addModel(model);
    expect(url).toMatch(/@sha256:[0-9a-f]{64}\/model-00001-of-00002\.gguf$/);
    vi.stubGlobal(
      "fetch",
      vi.fn(async () => new Response(null, { status: 599 })),
    );
    const [found] = await new ModelManager({ cacheManager: new CacheManager([storage]) }).getModels();
    expect(found?.url).toBe(url);
    expect(found?.validate()).toBe(ModelValidationStatus.VALID);
    const blobs = await (found as NonNullable<typeof found>).open();
    expect(await Promise.all(blobs.map(async (b) => sha(await bytesOf(b))))).toEqual(
      parts.map((p) => sha(files[p])),
    );
  });

  it("stores what wllama's CacheManager downloads through the verified push", async () => {
    const file = await readFile(join(FIXTURES, "tiny-llama.gguf"));
    const store = createMemoryStore();
    const storage = createWllamaStorage(store);
    vi.stubGlobal(
      "fetch",
      vi.fn(
        async () =>
          new Response(file, { headers: { "content-length": String(file.byteLength), etag: '"x"' } }),
      ),
    );
    const cache = new CacheManager([storage]);
    const url = "https://files.example/models/tiny-llama.gguf";
    await cache.download(url);
    expect(await store.exists({ digest: sha(file) })).toBe(true);
    expect(await cache.getMetadata(await wllamaCacheKey(url))).toMatchObject({
      originalURL: url,
      originalSize: file.byteLength,
    });
    expect(sha(await bytesOf(await cache.open(url)))).toBe(sha(file));
  });
});

describe("loadWllamaModel and ggufBlobs", () => {
  const fakeWllama = (fail?: Error) => {
    const calls: { blobs: Blob[]; params: unknown }[] = [];
    return {
      calls,
      loaded: false,
      isModelLoaded() {
        return this.loaded;
      },
      async loadModel(blobs: Blob[], params?: { n_ctx: number }) {
        calls.push({ blobs, params });
        if (fail) throw fail;
        this.loaded = true;
      },
    };
  };

  it("hands wllama the weight files as Blobs in split order, with its parameters", async () => {
    const store = createMemoryStore();
    const parts = [text("GGUF part two"), text("GGUF part one")];
    const model = await handMade(store, [
      { path: "m-00002-of-00002.gguf", bytes: parts[0] as Uint8Array, mediaType: GGUF },
      { path: "m-00001-of-00002.gguf", bytes: parts[1] as Uint8Array, mediaType: GGUF },
    ]);
    const wllama = fakeWllama();
    await loadWllamaModel(wllama, model, { params: { n_ctx: 64 } });
    expect(wllama.calls).toHaveLength(1);
    expect(wllama.calls[0]?.params).toEqual({ n_ctx: 64 });
    expect(await Promise.all((wllama.calls[0]?.blobs ?? []).map(bytesOf))).toEqual([parts[1], parts[0]]);
    const error = await failure(loadWllamaModel(wllama, model));
    expect(error.code).toBe("INVALID_ARGUMENT");
    expect(error.message).toMatch(/^Cannot load registry.test\/ai\/hand:v1 into wllama: .*loaded already/);
  });

  it("keeps the manifest's order for names that are not llama.cpp split names", async () => {
    const store = createMemoryStore();
    const model = await handMade(store, [
      { path: "b.gguf", bytes: text("GGUF b"), mediaType: GGUF },
      { path: "a.gguf", bytes: text("GGUF a"), mediaType: GGUF },
    ]);
    expect(
      await Promise.all(
        (await ggufBlobs(model)).map(async (b) => new TextDecoder().decode(await bytesOf(b))),
      ),
    ).toEqual(["GGUF b", "GGUF a"]);
  });

  it("reads a byte stream (Node's Blob.stream()) through its reused buffer, and any other stream whole, bytes intact", async () => {
    const store = createMemoryStore();
    // 9 MiB and a few bytes: three 4 MiB pieces, the last a short one.
    const big = new Uint8Array(9 * 1024 * 1024 + 13);
    for (let i = 0; i < big.length; i += 4096) big[i] = (i / 4096) % 251;
    big.set(text("GGUF"), 0);
    const byteStore: Store = {
      ...store,
      fetch: async (blob, options) =>
        new Blob([
          (await new Response(await store.fetch(blob, options)).arrayBuffer()) as ArrayBuffer,
        ]).stream(),
    };
    expect(() => new Blob([]).stream().getReader({ mode: "byob" })).not.toThrow();
    const model = await handMade(store, [{ path: "model.gguf", bytes: big, mediaType: GGUF }]);
    const viaBytes = await handMade(store, [{ path: "model.gguf", bytes: big, mediaType: GGUF }], byteStore);
    for (const m of [model, viaBytes]) {
      const [blob] = await ggufBlobs(m);
      expect(blob?.size).toBe(big.byteLength);
      expect(sha(await bytesOf(blob as Blob))).toBe(sha(big));
    }
  });

  it("refuses weights that are not GGUF, by name and by magic bytes, before wllama sees them", async () => {
    const store = createMemoryStore();
    const safetensors = await handMade(store, [
      { path: "model.safetensors", bytes: text("{}"), mediaType: "application/vnd.docker.ai.safetensors" },
    ]);
    const wllama = fakeWllama();
    const byName = await failure(loadWllamaModel(wllama, safetensors));
    expect(byName.code).toBe("UNSUPPORTED_ARTIFACT");
    expect(byName.message).toMatch(/model\.safetensors is not GGUF/);
    const fake = await handMade(store, [{ path: "model.gguf", bytes: text("not a gguf"), mediaType: GGUF }]);
    const byMagic = await failure(loadWllamaModel(wllama, fake));
    expect(byMagic.code).toBe("UNSUPPORTED_ARTIFACT");
    expect(byMagic.message).toMatch(/GGUF magic/);
    expect((await failure(createWllamaStorage(store).addModel(fake))).code).toBe("UNSUPPORTED_ARTIFACT");
    expect(() => wllamaModelUrls(safetensors)).toThrow(/not GGUF/);
    expect(wllama.calls).toEqual([]);
  });

  it("says NOT_FOUND for weights not in the store", async () => {
    const store = createMemoryStore();
    const model = await handMade(store, [
      { path: "model.gguf", bytes: text("GGUF gone"), mediaType: GGUF, stored: false },
    ]);
    const error = await failure(ggufBlobs(model));
    expect(error.code).toBe("NOT_FOUND");
    expect(error.message).toMatch(
      /^Cannot load registry.test\/ai\/hand:v1 into wllama: its weight file model\.gguf is not in the store/,
    );
    expect((await failure(createWllamaStorage(store).addModel(model))).code).toBe("NOT_FOUND");
  });

  it("turns wllama's refusal into UNSUPPORTED_ARTIFACT with wllama's error as the cause", async () => {
    const store = createMemoryStore();
    const model = await handMade(store, [
      { path: "model.gguf", bytes: text("GGUF truncated"), mediaType: GGUF },
    ]);
    const cause = new Error("failed to load model");
    const error = await failure(loadWllamaModel(fakeWllama(cause), model));
    expect(error.code).toBe("UNSUPPORTED_ARTIFACT");
    expect(error.message).toBe(
      "Cannot load registry.test/ai/hand:v1 into wllama: wllama refused it (failed to load model)",
    );
    expect(error.cause).toBe(cause);
  });
});
