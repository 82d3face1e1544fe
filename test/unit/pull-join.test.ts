import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createMemoryStore, type PullModelOptions, pullModel } from "../../src/index.js";
import { failure } from "../support/failure.js";
import { buildManifest } from "../support/layout.js";

const REF = "registry.test/ns/model:v1";
const artifact = buildManifest({
  config: {
    mediaType: "application/vnd.docker.ai.model.config.v0.1+json",
    bytes: new TextEncoder().encode(JSON.stringify({ config: { format: "safetensors" } })),
  },
  layers: [{ mediaType: "application/vnd.docker.ai.safetensors", bytes: new Uint8Array(randomBytes(4096)) }],
});
const weights = [...artifact.blobs.keys()][1] as string;

/**
 * A registry double serving `artifact`. The weights blob waits for `release()`; its request is kept
 * so a test can see whether the download was aborted. With `login`, it wants that Basic login.
 */
function registry(login?: string) {
  const requests: Request[] = [];
  let release = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let weightsRequested = () => {};
  const weightsRequest = new Promise<Request>((resolve) => {
    weightsRequested = () => resolve(requests.findLast((r) => r.url.endsWith(weights)) as Request);
  });
  const fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    requests.push(request);
    if (login && request.headers.get("authorization") !== `Basic ${btoa(login)}`)
      return new Response("", { status: 401, headers: { "www-authenticate": 'Basic realm="r"' } });
    const path = new URL(request.url).pathname;
    if (path.endsWith("/manifests/v1"))
      return new Response(artifact.bytes as BodyInit, {
        headers: { "content-type": artifact.descriptor.mediaType },
      });
    const digest = path.slice(path.lastIndexOf("/") + 1);
    const bytes = artifact.blobs.get(digest);
    if (!bytes) return new Response("", { status: 404 });
    if (digest !== weights) return new Response(bytes as BodyInit);
    weightsRequested();
    const aborted = new Promise<never>((_, reject) => {
      request.signal.addEventListener("abort", () => reject(request.signal.reason));
    });
    await Promise.race([released, aborted]);
    return new Response(bytes as BodyInit);
  }) as typeof globalThis.fetch;
  return { requests, fetch, release: () => release(), weightsRequest };
}

const manifestGets = (requests: Request[]) =>
  requests.filter((r) => r.method === "GET" && r.url.endsWith("/manifests/v1"));

describe("concurrent pulls of one model", () => {
  it("detaches only the caller that aborts; the other's pull goes on", async () => {
    const r = registry();
    const store = createMemoryStore();
    const first = new AbortController();
    const a = pullModel(REF, { store, fetch: r.fetch, signal: first.signal });
    const b = pullModel(REF, { store, fetch: r.fetch });
    const request = await r.weightsRequest;
    first.abort();
    expect((await failure(a)).code).toBe("ABORTED");
    expect(request.signal.aborted).toBe(false);
    r.release();
    expect((await b).digest).toBe(artifact.descriptor.digest);
    expect(manifestGets(r.requests)).toHaveLength(1);
  });

  it("stops the download when every joined caller has aborted", async () => {
    const r = registry();
    const store = createMemoryStore();
    const first = new AbortController();
    const second = new AbortController();
    const a = pullModel(REF, { store, fetch: r.fetch, signal: first.signal });
    const b = pullModel(REF, { store, fetch: r.fetch, signal: second.signal });
    const request = await r.weightsRequest;
    first.abort();
    expect((await failure(a)).code).toBe("ABORTED");
    expect(request.signal.aborted).toBe(false);
    second.abort(new DOMException("too slow", "TimeoutError"));
    expect((await failure(b)).code).toBe("TIMEOUT");
    expect(request.signal.aborted).toBe(true);
  });

  it("never lets a caller ride on another caller's credentials", async () => {
    const r = registry("b:pb");
    const store = createMemoryStore();
    const options = (login: [string, string]): PullModelOptions => ({
      store,
      fetch: r.fetch,
      credentials: { "registry.test": { username: login[0], password: login[1] } },
    });
    const a = pullModel(REF, options(["a", "pa"]));
    const b = pullModel(REF, options(["b", "pb"]));
    expect((await failure(a)).code).toBe("UNAUTHORIZED");
    r.release();
    expect((await b).digest).toBe(artifact.descriptor.digest);
    expect(r.requests.map((q) => q.headers.get("authorization"))).toContain(`Basic ${btoa("b:pb")}`);
  });

  it("joins callers whose options are equal, if not the same objects", async () => {
    const r = registry("u:p");
    const store = createMemoryStore();
    const options = (): PullModelOptions => ({
      store,
      fetch: r.fetch,
      credentials: { "registry.test": { username: "u", password: "p" } },
      plainHttp: ["elsewhere.test"],
    });
    const a = pullModel(REF, options());
    const b = pullModel(REF, options());
    await r.weightsRequest;
    r.release();
    expect((await a).digest).toBe((await b).digest);
    expect(manifestGets(r.requests).filter((q) => q.headers.get("authorization"))).toHaveLength(1);
  });

  it("joins callers that name no store", async () => {
    // In Node there is neither OPFS nor IndexedDB: the default store is a memory store.
    expect((globalThis as { indexedDB?: unknown }).indexedDB).toBeUndefined();
    const r = registry();
    const a = pullModel(REF, { fetch: r.fetch });
    const b = pullModel(REF, { fetch: r.fetch });
    await r.weightsRequest;
    r.release();
    expect((await a).digest).toBe((await b).digest);
    expect(manifestGets(r.requests)).toHaveLength(1);
    expect(r.requests.filter((q) => q.url.endsWith(weights))).toHaveLength(1);
  });
});
