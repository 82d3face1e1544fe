// The transformers.js cache in Node over a memory store, with the tiny BERT fixture packed and served
// by the layout handler (an in-memory registry): which keys it answers (local paths, remote URLs with
// and without resolve/<revision>/, mapped ids and oci:<reference> ids), streamed bodies equal to the
// files, one pull per model, a failed pull surfacing as the body's OciError, and put/delete/fallback.
// The browser test (test/browser/transformers.browser.test.ts) runs real transformers.js inference.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createTransformersCache, type TransformersCacheLike } from "../../src/adapters/transformers.js";
import { createMemoryStore, isOciError, packModel, type Store } from "../../src/index.js";
import { createLayoutHandler, packFilesFromDirectory } from "../../src/node/index.js";

const FOLDER = join(import.meta.dirname, "../fixtures/tiny-bert/model");
const REF = "registry.test/acme/tiny-bert:v1";

/** The fixture packed into a memory store, served as a registry; every request path is logged. */
async function registry(tamper?: (path: string, bytes: Uint8Array) => Uint8Array) {
  const source = createMemoryStore();
  await packModel(await packFilesFromDirectory(FOLDER), { format: "docker-v0.2", store: source, tag: "v1" });
  const handler = createLayoutHandler(source);
  const requests: string[] = [];
  const fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    const path = new URL(request.url).pathname;
    requests.push(`${request.method} ${path}`);
    const response = await handler(request);
    if (!tamper || !path.includes("/blobs/") || request.method !== "GET") return response;
    const bytes = tamper(path, new Uint8Array(await response.arrayBuffer()));
    return new Response(bytes as Uint8Array<ArrayBuffer>, {
      status: response.status,
      headers: response.headers,
    });
  }) as typeof globalThis.fetch;
  return { fetch, requests, blobs: () => requests.filter((r) => r.includes("/blobs/")).length };
}

const file = (path: string) => readFile(join(FOLDER, path));

describe("createTransformersCache", () => {
  it("answers local and remote keys of an oci:<reference> id with the stored files, streamed", async () => {
    const { fetch, blobs } = await registry();
    const store = createMemoryStore();
    const cache = createTransformersCache({ store, fetch });
    const id = `oci:${REF}`;
    for (const key of [
      `/models/${id}/config.json`,
      `${id}/config.json`,
      `https://huggingface.co/${id}/resolve/main/config.json`,
      `https://oci.invalid/${id}/config.json`,
    ]) {
      const response = await cache.match(key);
      expect(response, key).toBeInstanceOf(Response);
      const want = await file("config.json");
      expect(response?.headers.get("content-length"), key).toBe(String(want.byteLength));
      expect(response?.headers.get("content-type"), key).toBe("application/json");
      expect(new Uint8Array(await (response as Response).arrayBuffer()), key).toEqual(new Uint8Array(want));
    }
    const onnx = await cache.match(`https://huggingface.co/${id}/resolve/main/onnx/model.onnx`);
    expect(new Uint8Array(await (onnx as Response).arrayBuffer())).toEqual(
      new Uint8Array(await file("onnx/model.onnx")),
    );
    // One pull for every key: each blob fetched once.
    expect(blobs()).toBe(5);
  });

  it("maps explicit ids, leaves files the model lacks and other models' keys to transformers.js", async () => {
    const { fetch } = await registry();
    const cache = createTransformersCache({
      store: createMemoryStore(),
      fetch,
      models: { "acme/bert": REF },
    });
    expect(cache.referenceOf("acme/bert")).toBe(REF);
    expect(cache.referenceOf(`oci:${REF}`)).toBe(REF);
    expect(cache.referenceOf("oci:registry.test/acme/tiny-bert")).toBeUndefined();
    expect(cache.referenceOf("Xenova/bert")).toBeUndefined();
    const hit = await cache.match("/models/acme/bert/tokenizer.json");
    expect(await hit?.text()).toBe((await file("tokenizer.json")).toString("utf8"));
    expect(
      await cache.match("https://huggingface.co/acme/bert/resolve/main/generation_config.json"),
    ).toBeUndefined();
    expect(await cache.match("https://huggingface.co/Xenova/bert/resolve/main/config.json")).toBeUndefined();
    expect(await cache.match("https://cdn.example/ort-wasm-simd-threaded.asyncify.wasm")).toBeUndefined();
  });

  it("reads nothing from the store until a body is read, and a second cache on the same store makes no blob request", async () => {
    const { fetch, blobs } = await registry();
    const base = createMemoryStore();
    let reads = 0;
    const store: Store = {
      ...base,
      fetch: (blob, options) => {
        reads++;
        return base.fetch(blob, options);
      },
    };
    const first = createTransformersCache({ store, fetch });
    await first.pull(`oci:${REF}`);
    const fetched = blobs();
    reads = 0;
    const response = await first.match(`oci:${REF}/onnx/model.onnx`);
    expect(reads).toBe(0);
    await response?.body?.cancel();
    const second = createTransformersCache({ store, fetch });
    const again = await second.match(`https://h/oci:${REF}/resolve/main/tokenizer_config.json`);
    expect(await again?.json()).toMatchObject({ tokenizer_class: "BertTokenizer" });
    expect(blobs()).toBe(fetched);
  });

  it("answers a failed pull with a body that fails with its OciError, and pulls again next time", async () => {
    let corrupt = true;
    const { fetch } = await registry((_path, bytes) => {
      if (!corrupt || bytes.byteLength < 1000) return bytes;
      const copy = bytes.slice();
      copy[500] = (copy[500] as number) ^ 0xff;
      return copy;
    });
    const cache = createTransformersCache({ store: createMemoryStore(), fetch });
    const response = await cache.match(`oci:${REF}/config.json`);
    expect(response).toBeInstanceOf(Response);
    expect(response?.headers.get("x-oci-error")).toBe("DIGEST_MISMATCH");
    const error = await (response as Response).arrayBuffer().catch((e: unknown) => e);
    expect(isOciError(error, "DIGEST_MISMATCH"), String(error)).toBe(true);
    await expect(cache.pull(`oci:${REF}`)).rejects.toMatchObject({ code: "DIGEST_MISMATCH" });
    corrupt = false;
    const model = await cache.pull(`oci:${REF}`);
    expect(model.files.has("onnx/model.onnx")).toBe(true);
  });

  it("refuses ids it cannot pull and bad maps with INVALID_ARGUMENT / INVALID_REFERENCE", async () => {
    const cache = createTransformersCache({ store: createMemoryStore() });
    await expect(cache.pull("Xenova/bert")).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(() => createTransformersCache({ models: { "a/": REF } })).toThrow(/Cannot map model id/);
    expect(() => createTransformersCache({ models: { a: "Not A Ref" } })).toThrow(
      expect.objectContaining({ code: "INVALID_REFERENCE" }),
    );
  });

  it("puts nothing for OCI models, and sends other keys to the fallback", async () => {
    const seen: string[] = [];
    const fallback: TransformersCacheLike = {
      match: async (key) => {
        seen.push(`match ${key}`);
        return key.endsWith("x.json") ? new Response("{}") : undefined;
      },
      put: async (key) => {
        seen.push(`put ${key}`);
      },
      delete: async (key) => {
        seen.push(`delete ${key}`);
        return true;
      },
    };
    const cache = createTransformersCache({ store: createMemoryStore(), fallback });
    await cache.put(`https://h/oci:${REF}/resolve/main/extra.json`, new Response("{}"));
    await cache.put("https://h/Xenova/bert/resolve/main/x.json", new Response("{}"));
    expect(await (await cache.match("https://h/Xenova/bert/resolve/main/x.json"))?.text()).toBe("{}");
    expect(await cache.delete?.(`oci:${REF}/config.json`)).toBe(false);
    expect(await cache.delete?.("https://h/Xenova/bert/resolve/main/x.json")).toBe(true);
    expect(seen).toEqual([
      "put https://h/Xenova/bert/resolve/main/x.json",
      "match https://h/Xenova/bert/resolve/main/x.json",
      "delete https://h/Xenova/bert/resolve/main/x.json",
    ]);
  });
});
