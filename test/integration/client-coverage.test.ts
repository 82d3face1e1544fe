// Against CNCF Distribution, with artifacts pushed by skopeo (issue 24 coverage): index platform
// selection, UNSUPPORTED_ARTIFACT from a real pull, a Retry-After actually waited, a server that
// never answers (TIMEOUT), and a token renewed after the registry stops accepting it. Faults come
// from a small relay of ours between the client and the registry; the registry itself is real.
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage } from "node:http";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryStore, createRegistryClient, openModel, pullModel } from "../../src/index.js";
import { failure } from "../support/failure.js";
import { buildIndex, buildManifest, pushWithSkopeo, sampleModel } from "../support/layout.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";

interface Seen {
  method: string;
  path: string;
  /** `performance.now()` when the request arrived. */
  at: number;
  authorization: string | null;
}

type Answer = { status: number; headers?: Record<string, string>; body?: string } | "hang" | undefined;

/**
 * A relay on 127.0.0.1:0 in front of `upstream` for GET and HEAD: `intercept` may answer a request
 * itself, leave it hanging, or let it through. Records every request and the last Bearer challenge
 * the registry sent.
 */
async function relay(
  upstream: string,
  intercept: (seen: Seen, request: IncomingMessage) => Answer = () => undefined,
) {
  const log: Seen[] = [];
  let challenge: string | undefined;
  const server = createServer(async (req, res) => {
    const seen: Seen = {
      method: req.method ?? "GET",
      path: req.url ?? "/",
      at: performance.now(),
      authorization: req.headers.authorization ?? null,
    };
    log.push(seen);
    const answer = intercept(seen, req);
    if (answer === "hang") return;
    if (answer) return void res.writeHead(answer.status, answer.headers).end(answer.body);
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers))
      if (typeof value === "string" && name !== "host" && name !== "connection") headers.set(name, value);
    try {
      const response = await fetch(`http://${upstream}${seen.path}`, {
        method: seen.method,
        headers,
        redirect: "manual",
      });
      challenge = response.headers.get("www-authenticate") ?? challenge;
      const out: Record<string, string> = {};
      response.headers.forEach((value, name) => {
        if (name !== "transfer-encoding" && name !== "connection") out[name] = value;
      });
      res.writeHead(response.status, out);
      if (!response.body || seen.method === "HEAD") return void res.end();
      Readable.fromWeb(response.body as import("node:stream/web").ReadableStream).pipe(res);
    } catch {
      res.destroy();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (typeof address !== "object" || !address) throw new Error("the relay has no port");
  return {
    host: `127.0.0.1:${address.port}`,
    log,
    challenge: () => challenge,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const text = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

/** A small container image (not a model) for one platform. */
const image = (name: string) =>
  buildManifest({
    config: { mediaType: "application/vnd.oci.image.config.v1+json", bytes: text({ name }) },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", bytes: randomBytes(512) }],
  });

describe("registry client coverage against CNCF Distribution, anonymous", () => {
  let registry: TestRegistry;
  const amd64 = image("amd64");
  const arm64 = image("arm64");
  const s390x = image("s390x");
  const model = sampleModel({ shardSize: 1000 });
  const platforms = [
    { artifact: amd64, platform: { os: "linux", architecture: "amd64" } },
    { artifact: arm64, platform: { os: "linux", architecture: "arm64", variant: "v8" } },
    { artifact: s390x, platform: { os: "linux", architecture: "s390x" } },
  ];
  const images = buildIndex(platforms);
  const withModel = buildIndex([
    ...platforms,
    { artifact: model, platform: { os: "linux", architecture: "amd64" } },
  ]);

  beforeAll(async () => {
    registry = await startRegistry();
    await pushWithSkopeo(registry, images, "multi/images", "v1");
    await pushWithSkopeo(registry, withModel, "multi/model", "v1");
  });
  afterAll(() => registry?.stop());

  /** Resolves `repository:v1` and returns the digest chosen and the manifest paths fetched. */
  async function resolve(repository: string, platform?: { os?: string; architecture?: string }) {
    const paths: string[] = [];
    const client = createRegistryClient({
      ...(platform ? { platform } : {}),
      fetch: (input, init) => {
        paths.push(new URL(input instanceof Request ? input.url : String(input)).pathname);
        return fetch(input, init);
      },
    });
    const result = await client.getManifest(`${registry.host}/${repository}:v1`);
    return { result, manifests: paths.filter((p) => p.includes("/manifests/")) };
  }

  it("chooses the configured platform's manifest from an index of images", async () => {
    const arm = await resolve("multi/images", { os: "linux", architecture: "arm64" });
    expect(arm.result.digest).toBe(arm64.descriptor.digest);
    expect(arm.result.index?.digest).toBe(images.descriptor.digest);
    // The platform match is looked at first.
    expect(arm.manifests[1]).toBe(`/v2/multi/images/manifests/${arm64.descriptor.digest}`);
    expect((await resolve("multi/images", { architecture: "s390x" })).result.digest).toBe(
      s390x.descriptor.digest,
    );
  });

  it("with no platform configured (or none matching) and no model, takes the first entry", async () => {
    expect((await resolve("multi/images")).result.digest).toBe(amd64.descriptor.digest);
    expect((await resolve("multi/images", { architecture: "mips" })).result.digest).toBe(
      amd64.descriptor.digest,
    );
  });

  it("prefers the model (by its config media type) over a platform match that is a plain image", async () => {
    // skopeo drops artifactType from index entries: only the child's config says it is a model,
    // and an image for the same platform comes first.
    const { result } = await resolve("multi/model", { os: "linux", architecture: "amd64" });
    expect(result.digest).toBe(model.descriptor.digest);
    expect((await resolve("multi/model")).result.digest).toBe(model.descriptor.digest);
  });

  it("takes an entry whose artifactType is a model without looking at the others", async () => {
    // An index with artifactType in its entries, PUT as it is (skopeo would drop the field); its
    // children are already in the repository.
    const repository = "multi/model";
    const typedModel = sampleModel({
      shardSize: 100,
      artifactType: "application/vnd.cncf.model.manifest.v1+json",
    });
    await pushWithSkopeo(registry, typedModel, repository, "child");
    const index = buildIndex([...platforms, { artifact: typedModel }], { keepArtifactType: true });
    const typed = JSON.parse(new TextDecoder().decode(index.bytes)).manifests[3];
    expect(typed.artifactType).toBe("application/vnd.cncf.model.manifest.v1+json");
    const put = await fetch(`http://${registry.host}/v2/${repository}/manifests/typed`, {
      method: "PUT",
      headers: { "content-type": "application/vnd.oci.image.index.v1+json" },
      body: index.bytes as Uint8Array<ArrayBuffer>,
    });
    expect(put.status).toBe(201);
    const paths: string[] = [];
    const client = createRegistryClient({
      platform: { os: "linux", architecture: "amd64" },
      fetch: (input, init) => {
        paths.push(new URL(input instanceof Request ? input.url : String(input)).pathname);
        return fetch(input, init);
      },
    });
    const result = await client.getManifest(`${registry.host}/${repository}:typed`);
    expect(result.digest).toBe(typed.digest);
    expect(paths).toEqual([
      `/v2/${repository}/manifests/typed`,
      `/v2/${repository}/manifests/${typed.digest}`,
    ]);
  });

  it("refuses a model whose two layers provide one file, with UNSUPPORTED_ARTIFACT", async () => {
    const dup = buildManifest({
      config: { mediaType: "application/vnd.docker.ai.model.config.v0.2+json", bytes: text({}) },
      layers: [
        {
          mediaType: "application/vnd.docker.ai.model.file",
          bytes: text({ a: 1 }),
          annotations: { "org.cncf.model.filepath": "tokenizer.json" },
        },
        {
          mediaType: "application/vnd.docker.ai.model.file",
          bytes: text({ b: 2 }),
          annotations: { "org.cncf.model.filepath": "tokenizer.json" },
        },
      ],
    });
    await pushWithSkopeo(registry, dup, "models/dup", "v1");
    const ref = `${registry.host}/models/dup:v1`;
    const store = createMemoryStore();
    const error = await failure(pullModel(ref, { store }));
    expect(error.code).toBe("UNSUPPORTED_ARTIFACT");
    expect(error.message).toBe(`Cannot pull ${ref}: two layers both provide tokenizer.json`);
    expect((await failure(openModel(ref, { store }))).code).toBe("NOT_FOUND");
  });

  for (const status of [429, 503]) {
    it(`waits the Retry-After: 1 of a ${status} before its one retry`, async () => {
      let refused = 0;
      const proxy = await relay(registry.host, (seen) =>
        seen.path.includes("/manifests/") && refused++ === 0
          ? { status, headers: { "retry-after": "1" }, body: "" }
          : undefined,
      );
      try {
        // Its own backoff would be at most 1 ms: only Retry-After makes it wait a second.
        const client = createRegistryClient({ retryDelay: 1, retries: 3 });
        const result = await client.getManifest(`${proxy.host}/multi/images@${amd64.descriptor.digest}`);
        expect(result.digest).toBe(amd64.descriptor.digest);
        const manifests = proxy.log.filter((s) => s.path.includes("/manifests/"));
        expect(manifests).toHaveLength(2);
        const [first, second] = manifests as [Seen, Seen];
        // A lower bound only (never flaky): the retry left no sooner than a second after the refusal
        // arrived, less the millisecond the event loop's clock may round away.
        expect(second.at - first.at).toBeGreaterThanOrEqual(999);
      } finally {
        await proxy.close();
      }
    });
  }

  it("ends a pull whose blob request is never answered with TIMEOUT, and records nothing", {
    timeout: 10_000,
  }, async () => {
    await pushWithSkopeo(registry, model, "models/tiny", "v1");
    const proxy = await relay(registry.host, (seen) => (seen.path.includes("/blobs/") ? "hang" : undefined));
    try {
      const ref = `${proxy.host}/models/tiny:v1`;
      const store = createMemoryStore();
      // Counted on the client's side: exact even when the loaded event loop delays the relay.
      const blobs: string[] = [];
      const counting: typeof fetch = (input, init) => {
        const path = new URL(input instanceof Request ? input.url : String(input)).pathname;
        if (path.includes("/blobs/")) blobs.push(path);
        return fetch(input, init);
      };
      const error = await failure(
        pullModel(ref, { store, fetch: counting, timeout: 300, retries: 1, retryDelay: 1 }),
      );
      expect(error.code).toBe("TIMEOUT");
      expect(error.message).toMatch(
        /^Cannot fetch bytes 0\+\d+ of sha256:[0-9a-f]{64} from .*: no response for 0\.3 s$/,
      );
      expect(blobs).toHaveLength(2); // the config blob, and its one retry
      expect((await failure(openModel(ref, { store }))).code).toBe("NOT_FOUND");
    } finally {
      await proxy.close();
    }
  });
});

describe("token renewal against CNCF Distribution with token auth", () => {
  let registry: TestRegistry;
  const model = sampleModel({ shardSize: 1000 });
  const repository = "public/renew";

  beforeAll(async () => {
    registry = await startRegistry({ auth: "token" });
    await pushWithSkopeo(registry, model, repository, "v1");
  });
  afterAll(() => registry?.stop());

  /**
   * A relay that revokes tokens early: once `revoke(token)` says so, a request carrying it gets the
   * 401 the registry would give an invalid token (its own challenge).
   */
  async function revoking(revoke: (token: string, used: number) => boolean) {
    const uses = new Map<string, number>();
    const proxy = await relay(registry.host, (seen) => {
      const token = seen.authorization?.replace(/^Bearer /, "");
      if (!token) return undefined;
      const used = uses.get(token) ?? 0;
      uses.set(token, used + 1);
      if (!revoke(token, used)) return undefined;
      return {
        status: 401,
        headers: {
          "content-type": "application/json",
          "www-authenticate": proxy.challenge() ?? "",
        },
        body: JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "token revoked" }] }),
      };
    });
    return proxy;
  }

  it("fetches a new token after its token is refused, and the request succeeds", async () => {
    // Each token is accepted once, then refused (revoked or expired early).
    const proxy = await revoking((_, used) => used >= 1);
    try {
      const before = registry.tokenRequests.length;
      const client = createRegistryClient();
      const ref = `${proxy.host}/${repository}:v1`;
      expect((await client.getManifest(ref)).digest).toBe(model.descriptor.digest);
      expect(registry.tokenRequests.length - before).toBe(1);
      const again = await client.getManifest(ref);
      expect(again.digest).toBe(model.descriptor.digest);
      expect(registry.tokenRequests.length - before).toBe(2);
      const sent = proxy.log.map((s) => s.authorization);
      // anonymous → 401; token 1 → 200; token 1 again → 401 (revoked); token 2 → 200
      expect(sent).toHaveLength(4);
      expect(sent[0]).toBeNull();
      expect(sent[2]).toBe(sent[1]);
      expect(sent[3]).not.toBe(sent[2]);
      expect(sent[3]).toMatch(/^Bearer ./);
    } finally {
      await proxy.close();
    }
  });

  it("ends in UNAUTHORIZED when the renewed token is refused as well, with no loop", async () => {
    let first: string | undefined;
    // The first token works once; after that every token is refused.
    const proxy = await revoking((token, used) => {
      first ??= token;
      return token !== first || used >= 1;
    });
    try {
      const client = createRegistryClient();
      const ref = `${proxy.host}/${repository}:v1`;
      await client.getManifest(ref);
      const before = registry.tokenRequests.length;
      const seen = proxy.log.length;
      const error = await failure(client.getManifest(ref));
      expect(error.code).toBe("UNAUTHORIZED");
      expect(error.status).toBe(401);
      expect(registry.tokenRequests.length - before).toBe(1);
      expect(proxy.log.length - seen).toBe(2); // the refused token, then the renewed one: no more
    } finally {
      await proxy.close();
    }
  });
});
