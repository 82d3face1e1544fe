// Coverage the other unit files lacked (issue 24): every UNSUPPORTED_ARTIFACT the pull can raise, a
// server that never answers (TIMEOUT, not a hang), index platform selection, a Retry-After that is
// actually waited, and a token renewed after the registry revoked it.
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  createMemoryStore,
  createRegistryClient,
  MediaType,
  openModel,
  pullModel,
  type RegistryClientOptions,
} from "../../src/index.js";
import { failure } from "../support/failure.js";
import { tarOf } from "../support/models.js";

const encoder = new TextEncoder();
const sha = (b: Uint8Array | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const REF = "registry.test/ns/model:v1";

interface Part {
  mediaType: string;
  bytes: Uint8Array;
  annotations?: Record<string, string>;
}

const descriptor = (b: Part) => ({
  mediaType: b.mediaType,
  digest: sha(b.bytes),
  size: b.bytes.byteLength,
  ...(b.annotations ? { annotations: b.annotations } : {}),
});

function manifestOf(config: Part, layers: Part[], artifactType?: string): Part {
  const body = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    ...(artifactType ? { artifactType } : {}),
    config: descriptor(config),
    layers: layers.map(descriptor),
  };
  return { mediaType: MediaType.OciManifest, bytes: encoder.encode(JSON.stringify(body)) };
}

/**
 * A registry double: `tags` name manifests, every manifest and blob is served by digest, and each
 * request's path goes to `requests`.
 */
function registry(tags: Record<string, Part>, blobs: Part[] = []) {
  const byDigest = new Map<string, Part>();
  for (const b of [...Object.values(tags), ...blobs]) byDigest.set(sha(b.bytes), b);
  const requests: string[] = [];
  const fetch = (async (input: RequestInfo | URL) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    requests.push(url.pathname);
    const target = decodeURIComponent(url.pathname.split("/").pop() ?? "");
    const found = tags[target] ?? byDigest.get(target);
    if (!found) return Response.json({ errors: [{ code: "MANIFEST_UNKNOWN" }] }, { status: 404 });
    const isManifest = url.pathname.includes("/manifests/");
    return new Response(found.bytes as Uint8Array<ArrayBuffer>, {
      headers: {
        "content-type": isManifest ? found.mediaType : "application/octet-stream",
        "content-length": String(found.bytes.byteLength),
        ...(isManifest ? { "docker-content-digest": sha(found.bytes) } : {}),
      },
    });
  }) as typeof globalThis.fetch;
  return { fetch, requests };
}

describe("UNSUPPORTED_ARTIFACT from a pull", () => {
  const config = {
    mediaType: "application/vnd.docker.ai.model.config.v0.2+json",
    bytes: encoder.encode("{}"),
  };
  const weights: Part = {
    mediaType: "application/vnd.docker.ai.safetensors",
    bytes: encoder.encode("weights"),
    annotations: { "org.cncf.model.filepath": "model.safetensors" },
  };
  const file = (path: string, text: string): Part => ({
    mediaType: "application/vnd.docker.ai.model.file",
    bytes: encoder.encode(text),
    annotations: { "org.cncf.model.filepath": path },
  });

  it("refuses two layers that both provide one file before fetching a blob, and keeps nothing", async () => {
    const layers = [weights, file("tokenizer.json", '{"a":1}'), file("tokenizer.json", '{"b":2}')];
    const { fetch } = registry({ v1: manifestOf(config, layers) }, [config, ...layers]);
    const store = createMemoryStore();
    const error = await failure(pullModel(REF, { fetch, store }));
    expect(error.code).toBe("UNSUPPORTED_ARTIFACT");
    expect(error.message).toBe(`Cannot pull ${REF}: two layers both provide tokenizer.json`);
    expect([...(await store.tags()).keys()]).toEqual([]);
    expect(await store.list()).toEqual([]);
    expect((await failure(openModel(REF, { store }))).code).toBe("NOT_FOUND");
  });

  it("refuses a file layer and a config archive entry with the same path", async () => {
    const v01 = {
      mediaType: "application/vnd.docker.ai.model.config.v0.1+json",
      bytes: encoder.encode("{}"),
    };
    const archive: Part = {
      mediaType: "application/vnd.docker.ai.vllm.config.tar",
      bytes: await tarOf({ "config.json": encoder.encode("{}"), "tokenizer.json": encoder.encode("{}") }),
    };
    const layers = [weights, file("tokenizer.json", '{"a":1}'), archive];
    const { fetch } = registry({ v1: manifestOf(v01, layers) }, [v01, ...layers]);
    const store = createMemoryStore();
    const error = await failure(pullModel(REF, { fetch, store, weights: false }));
    expect(error.code).toBe("UNSUPPORTED_ARTIFACT");
    expect(error.message).toBe(`Cannot pull ${REF}: two layers both provide tokenizer.json`);
    expect((await failure(openModel(REF, { store }))).code).toBe("NOT_FOUND");
  });

  it("keeps two weight layers with the same path apart when only the config is pulled (they are not read)", async () => {
    const layers = [weights, { ...weights, bytes: encoder.encode("other weights") }];
    const { fetch, requests } = registry({ v1: manifestOf(config, layers) }, [config, ...layers]);
    const model = await pullModel(REF, { fetch, store: createMemoryStore(), weights: false });
    expect([...model.files.keys()]).toEqual([]);
    expect(requests.filter((p) => p.includes("/blobs/")).length).toBe(1); // the config blob only
    // …and the full pull refuses them.
    const error = await failure(pullModel(REF, { fetch, store: createMemoryStore() }));
    expect(error.code).toBe("UNSUPPORTED_ARTIFACT");
    expect(error.message).toBe(`Cannot pull ${REF}: two layers both provide model.safetensors`);
  });

  // Every runtime decodes zstd (fzstd where DecompressionStream cannot): a zstd layer that is no
  // sound zstd stream is an unsafe archive.
  it("refuses a zstd archive layer that does not decode, and keeps nothing of it", async () => {
    const mp = { mediaType: "application/vnd.cncf.model.config.v1+json", bytes: encoder.encode("{}") };
    const docs: Part = {
      mediaType: "application/vnd.cncf.model.doc.v1.tar+zstd",
      bytes: new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3, 4]),
    };
    const layers = [{ ...weights, mediaType: "application/vnd.cncf.model.weight.v1.raw" }, docs];
    const { fetch } = registry(
      { v1: manifestOf(mp, layers, "application/vnd.cncf.model.manifest.v1+json") },
      [mp, ...layers],
    );
    const store = createMemoryStore();
    const error = await failure(pullModel(REF, { fetch, store }));
    expect(error.code).toBe("UNSAFE_ARCHIVE");
    expect(error.message).toMatch(
      new RegExp(
        `^Cannot extract layer ${sha(docs.bytes)} \\(.*tar\\+zstd\\): a zstd frame needs dictionary 3, which no layer provides; nothing of it was kept$`,
      ),
    );
    expect(await store.exists(descriptor(docs))).toBe(false);
    expect((await failure(openModel(REF, { store }))).code).toBe("NOT_FOUND");
  });
});

describe("a server that accepts the connection and never answers", () => {
  let server: Server | undefined;
  afterEach(async () => {
    const s = server;
    server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  });

  /** Listens on 127.0.0.1:0; `handle` may answer or leave the request hanging. */
  async function listen(
    handle: (
      path: string,
      respond: (status: number, headers: Record<string, string>, body?: string) => void,
    ) => void,
  ) {
    server = createServer((req, res) => {
      handle(req.url ?? "", (status, headers, body) => res.writeHead(status, headers).end(body));
    });
    await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    if (typeof address !== "object" || !address) throw new Error("no port");
    return { host: `127.0.0.1:${address.port}` };
  }

  /** The global fetch, counting the requests the client sends (client side: exact under load). */
  function counted() {
    const sent: string[] = [];
    const fetch = ((input: RequestInfo | URL, init?: RequestInit) => {
      sent.push(new URL(input instanceof Request ? input.url : String(input)).pathname);
      return globalThis.fetch(input, init);
    }) as typeof globalThis.fetch;
    return { sent, fetch };
  }

  // Timeouts of 300 ms: this 2-core machine's event loop was seen stalling 100-220 ms under load.
  it("ends with TIMEOUT (no response headers within the timeout), not NETWORK and not a hang", {
    timeout: 5_000,
  }, async () => {
    const { host } = await listen(() => {});
    const { sent, fetch } = counted();
    const client = createRegistryClient({ fetch, timeout: 300, retries: 0 });
    const error = await failure(client.getManifest(`${host}/ns/model:v1`));
    expect(error.code).toBe("TIMEOUT");
    expect(error.message).toBe(`Cannot fetch manifest ${host}/ns/model:v1: no response for 0.3 s`);
    expect(sent).toEqual(["/v2/ns/model/manifests/v1"]);
  });

  it("retries a request that timed out, then reports TIMEOUT", { timeout: 5_000 }, async () => {
    const { host } = await listen(() => {});
    const { sent, fetch } = counted();
    const client = createRegistryClient({ fetch, timeout: 300, retries: 2, retryDelay: 1 });
    const error = await failure(client.getManifest(`${host}/ns/model:v1`));
    expect(error.code).toBe("TIMEOUT");
    expect(sent).toHaveLength(3);
  });

  it("times out a token realm that never answers, with TIMEOUT", { timeout: 5_000 }, async () => {
    const { host } = await listen((path, respond) => {
      if (path.startsWith("/token")) return; // the realm hangs
      respond(401, { "www-authenticate": `Bearer realm="http://${host}/token",service="svc"` });
    });
    const { sent, fetch } = counted();
    const client = createRegistryClient({ fetch, timeout: 300, retries: 0 });
    const error = await failure(client.getManifest(`${host}/ns/model:v1`));
    expect(error.code).toBe("TIMEOUT");
    expect(error.message).toBe(`Cannot request http://${host}/token: no response for 0.3 s`);
    expect(sent).toEqual(["/v2/ns/model/manifests/v1", "/token"]);
  });
});

describe("index resolution", () => {
  const imageConfig = { mediaType: "application/vnd.oci.image.config.v1+json", bytes: encoder.encode("{}") };
  const image = (name: string) =>
    manifestOf({ ...imageConfig, bytes: encoder.encode(JSON.stringify({ name })) }, [
      { mediaType: "application/vnd.oci.image.layer.v1.tar", bytes: encoder.encode(name) },
    ]);
  const modelManifest = manifestOf(
    { mediaType: "application/vnd.docker.ai.model.config.v0.1+json", bytes: encoder.encode('{"m":1}') },
    [{ mediaType: "application/vnd.docker.ai.safetensors", bytes: encoder.encode("w") }],
  );
  const amd64 = image("amd64");
  const arm64 = image("arm64");
  const windows = image("windows");
  type Entry = { manifest: Part; platform?: Record<string, string>; artifactType?: string };
  const indexOf = (entries: Entry[]): Part => ({
    mediaType: MediaType.OciIndex,
    bytes: encoder.encode(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciIndex,
        manifests: entries.map((e) => ({
          ...descriptor(e.manifest),
          ...(e.platform ? { platform: e.platform } : {}),
          ...(e.artifactType ? { artifactType: e.artifactType } : {}),
        })),
      }),
    ),
  });
  const images: Entry[] = [
    { manifest: amd64, platform: { os: "linux", architecture: "amd64" } },
    { manifest: arm64, platform: { os: "linux", architecture: "arm64", variant: "v8" } },
    { manifest: windows, platform: { os: "windows", architecture: "amd64" } },
  ];
  const resolve = async (entries: Entry[], options: RegistryClientOptions = {}) => {
    const index = indexOf(entries);
    const { fetch, requests } = registry(
      { v1: index },
      entries.map((e) => e.manifest),
    );
    const result = await createRegistryClient({ fetch, ...options }).getManifest(REF);
    expect(result.index?.digest).toBe(sha(index.bytes));
    return { digest: result.digest, manifests: requests.filter((p) => p.includes("/manifests/")) };
  };

  it("chooses the manifest of the configured platform when no entry is a model, looking at it first", async () => {
    const { digest, manifests } = await resolve(images, { platform: { os: "linux", architecture: "arm64" } });
    expect(digest).toBe(sha(arm64.bytes));
    // The match first; then the others, in case one is a model its entry does not declare.
    expect(manifests).toEqual([
      "/v2/ns/model/manifests/v1",
      `/v2/ns/model/manifests/${sha(arm64.bytes)}`,
      `/v2/ns/model/manifests/${sha(amd64.bytes)}`,
      `/v2/ns/model/manifests/${sha(windows.bytes)}`,
    ]);
    const windowsPick = await resolve(images, { platform: { os: "windows" } });
    expect(windowsPick.digest).toBe(sha(windows.bytes));
    const variant = await resolve(images, { platform: { architecture: "arm64", variant: "v7" } });
    expect(variant.digest).toBe(sha(amd64.bytes)); // no v7: no platform match, the first entry
  });

  it("prefers an entry whose artifactType is a model over the configured platform", async () => {
    const entries = [
      ...images,
      { manifest: modelManifest, artifactType: "application/vnd.docker.ai.model+json" },
    ];
    const { digest, manifests } = await resolve(entries, {
      platform: { os: "linux", architecture: "amd64" },
    });
    expect(digest).toBe(sha(modelManifest.bytes));
    expect(manifests).toHaveLength(2);
  });

  it("prefers a manifest whose config is a model over the configured platform (DESIGN: model first, then platform)", async () => {
    // No artifactType on the entries (skopeo drops it): only the child's config says it is a model.
    const entries = [
      ...images,
      { manifest: modelManifest, platform: { os: "linux", architecture: "amd64" } },
    ];
    const { digest } = await resolve(entries, { platform: { os: "linux", architecture: "amd64" } });
    expect(digest).toBe(sha(modelManifest.bytes));
    const unplatformed = [...images, { manifest: modelManifest }];
    expect((await resolve(unplatformed, { platform: { os: "linux", architecture: "arm64" } })).digest).toBe(
      sha(modelManifest.bytes),
    );
  });

  it("takes first what the `prefers` policy names, by the child's config when the entry says nothing", async () => {
    const windowsConfig = "application/vnd.oci.image.config.v1+json";
    const prefersWindows = (mediaType: string | undefined) => mediaType === "application/vnd.example.windows";
    const tagged = [
      ...images.slice(0, 2),
      { manifest: windows, artifactType: "application/vnd.example.windows" },
      { manifest: modelManifest },
    ];
    // The policy replaces the model default: the model entry is no longer special.
    expect((await resolve(tagged, { prefers: prefersWindows })).digest).toBe(sha(windows.bytes));
    const byConfig = await resolve(images, { prefers: (t) => t === windowsConfig });
    expect(byConfig.digest).toBe(sha(amd64.bytes)); // every image config matches: the first probed wins
    expect((await resolve([...images, { manifest: modelManifest }], { prefers: () => false })).digest).toBe(
      sha(amd64.bytes),
    );
  });

  it("stops at the platform match when it is itself a model (one child fetched)", async () => {
    const entries: Entry[] = [
      ...images.slice(0, 2),
      { manifest: modelManifest, platform: { os: "linux", architecture: "riscv64" } },
    ];
    const { digest, manifests } = await resolve(entries, { platform: { architecture: "riscv64" } });
    expect(digest).toBe(sha(modelManifest.bytes));
    expect(manifests).toHaveLength(2);
  });

  it("without a platform and no model artifactType: the first child whose config is a model, else the first entry", async () => {
    const withModel = await resolve([...images, { manifest: modelManifest }]);
    expect(withModel.digest).toBe(sha(modelManifest.bytes));
    const none = await resolve(images);
    expect(none.digest).toBe(sha(amd64.bytes));
    expect(none.manifests).toHaveLength(1 + images.length); // each child looked at, none a model
  });
});

describe("Retry-After is waited for", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const manifest = manifestOf(
    { mediaType: "application/vnd.docker.ai.model.config.v0.1+json", bytes: encoder.encode("{}") },
    [],
  );

  /**
   * Waits (on real I/O turns, which the fake timers leave alone) until `done()`; unlike `vi.waitFor`,
   * which advances fake timers while it polls, it never moves the clock.
   */
  async function until(done: () => boolean) {
    for (let turns = 0; !done(); turns++) {
      if (turns > 1000) throw new Error("gave up waiting");
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** A registry double that answers the first request with `first`, then the manifest. */
  function flaky(first: () => Response) {
    const ok = registry({ v1: manifest });
    let calls = 0;
    const fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
      calls++;
      if (calls === 1) {
        ok.requests.push("(refused)");
        return first();
      }
      return ok.fetch(input, init);
    }) as typeof globalThis.fetch;
    return { fetch, requests: ok.requests };
  }

  // The backoff the client would use instead (retryDelay 1 ms) is far below the 1 s asked for, so
  // a client that ignored Retry-After would retry within the first 999 ms.
  for (const status of [429, 503]) {
    it(`waits the ${status}'s Retry-After: 1 (1000 ms) before the one retry`, async () => {
      vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval"] });
      const { fetch, requests } = flaky(() => new Response("", { status, headers: { "retry-after": "1" } }));
      const pending = createRegistryClient({ fetch, retries: 3, retryDelay: 1 }).getManifest(REF);
      await until(() => requests.length === 1);
      await vi.advanceTimersByTimeAsync(999);
      expect(requests).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(1);
      await until(() => requests.length === 2);
      expect((await pending).digest).toBe(sha(manifest.bytes));
      expect(requests).toHaveLength(2);
    });
  }

  it("waits until a Retry-After date, measured by the injected clock", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval"] });
    const now = Date.parse("2026-01-01T00:00:00Z");
    const { fetch, requests } = flaky(
      () => new Response("", { status: 429, headers: { "retry-after": "Thu, 01 Jan 2026 00:00:03 GMT" } }),
    );
    const pending = createRegistryClient({ fetch, retryDelay: 1, now: () => now }).getManifest(REF);
    await until(() => requests.length === 1);
    await vi.advanceTimersByTimeAsync(2_999);
    expect(requests).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    await until(() => requests.length === 2);
    expect((await pending).digest).toBe(sha(manifest.bytes));
  });
});

describe("a token the registry stops accepting", () => {
  const manifest = manifestOf(
    { mediaType: "application/vnd.docker.ai.model.config.v0.1+json", bytes: encoder.encode("{}") },
    [],
  );

  /**
   * A token-auth registry double: the token server hands out tok-1, tok-2, …; the registry accepts
   * the tokens in `valid` (each newly issued one is valid) and answers 401 with a Bearer challenge
   * otherwise. `revoke` drops a token; `revokeAll` makes every later token invalid as well.
   */
  function tokenRegistry(options: { expiresIn?: number } = {}) {
    const ok = registry({ v1: manifest });
    const valid = new Set<string>();
    let issued = 0;
    let refuseNew = false;
    const sent: (string | null)[] = [];
    const fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const request = new Request(input, init);
      const url = new URL(request.url);
      if (url.host === "auth.test") {
        issued++;
        const token = `tok-${issued}`;
        if (!refuseNew) valid.add(token);
        return Response.json({ token, ...(options.expiresIn ? { expires_in: options.expiresIn } : {}) });
      }
      const authorization = request.headers.get("authorization");
      sent.push(authorization);
      if (!authorization || !valid.has(authorization.replace(/^Bearer /, ""))) {
        return Response.json(
          { errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] },
          {
            status: 401,
            headers: {
              "www-authenticate":
                'Bearer realm="https://auth.test/token",service="registry.test",scope="repository:ns/model:pull"',
            },
          },
        );
      }
      return ok.fetch(request);
    }) as typeof globalThis.fetch;
    return {
      fetch,
      sent,
      tokens: () => issued,
      revoke: (token: string) => valid.delete(token),
      revokeAll: () => {
        valid.clear();
        refuseNew = true;
      },
    };
  }

  it("fetches a new token after a 401 for the cached one, and the request succeeds", async () => {
    const r = tokenRegistry();
    const client = createRegistryClient({ fetch: r.fetch });
    await client.getManifest(REF);
    expect(r.tokens()).toBe(1);
    expect(r.sent).toEqual([null, "Bearer tok-1"]);
    r.revoke("tok-1");
    expect((await client.getManifest(REF)).digest).toBe(sha(manifest.bytes));
    expect(r.tokens()).toBe(2);
    expect(r.sent.slice(2)).toEqual(["Bearer tok-1", "Bearer tok-2"]);
    // The renewed token is cached: the next request sends it up front, no token request.
    await client.getManifest(REF);
    expect(r.tokens()).toBe(2);
    expect(r.sent.slice(4)).toEqual(["Bearer tok-2"]);
  });

  it("ends in UNAUTHORIZED when the renewed token is refused too, with no loop", async () => {
    const r = tokenRegistry();
    const client = createRegistryClient({ fetch: r.fetch });
    await client.getManifest(REF);
    r.revokeAll();
    const error = await failure(client.getManifest(REF));
    expect(error.code).toBe("UNAUTHORIZED");
    expect(error.status).toBe(401);
    expect(error.message).toMatch(
      /^Cannot fetch manifest registry\.test\/ns\/model:v1: the registry answered 401/,
    );
    expect(r.tokens()).toBe(2);
    expect(r.sent.slice(2)).toEqual(["Bearer tok-1", "Bearer tok-2"]);
  });

  it("renews a token that expired by the injected clock before sending it (no 401 needed)", async () => {
    let now = Date.parse("2026-01-01T00:00:00Z");
    const r = tokenRegistry({ expiresIn: 60 });
    const client = createRegistryClient({ fetch: r.fetch, now: () => now });
    await client.getManifest(REF);
    now += 30_000;
    await client.getManifest(REF);
    expect(r.tokens()).toBe(1);
    now += 31_000; // past 60 s (less the renewal margin)
    await client.getManifest(REF);
    expect(r.tokens()).toBe(2);
    expect(r.sent).toEqual([null, "Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]);
  });
});
