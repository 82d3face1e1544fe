import { createHash } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { createRegistryClient, MediaType, type RegistryClientOptions } from "../../src/index.js";
import { failure } from "../support/failure.js";

type Handler = (request: Request, n: number) => Response | Promise<Response>;

/** An in-memory registry double: records requests; `handler` answers them. */
function fake(handler: Handler) {
  const requests: Request[] = [];
  const fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    requests.push(request);
    return handler(request, requests.length);
  }) as typeof globalThis.fetch;
  return { requests, fetch };
}

function client(handler: Handler, options: RegistryClientOptions = {}) {
  const f = fake(handler);
  return { ...f, client: createRegistryClient({ fetch: f.fetch, retries: 2, ...options }) };
}

const sha = (b: Uint8Array | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const manifestBody = JSON.stringify({
  schemaVersion: 2,
  mediaType: MediaType.OciManifest,
  config: { mediaType: "application/vnd.docker.ai.model.config.v0.1+json", digest: sha("c"), size: 1 },
  layers: [],
});
const manifestResponse = (body = manifestBody, headers: Record<string, string> = {}) =>
  new Response(body, { headers: { "content-type": MediaType.OciManifest, ...headers } });

const REF = "registry.test/ns/model:v1";

describe("registry client retries and timeouts", () => {
  it("retries 503 and 429 (honouring Retry-After) and then succeeds", async () => {
    const { client: c, requests } = client((_, n) =>
      n === 1
        ? new Response("", { status: 503 })
        : n === 2
          ? new Response("", { status: 429, headers: { "retry-after": "0" } })
          : manifestResponse(),
    );
    expect((await c.getManifest(REF)).digest).toBe(sha(manifestBody));
    expect(requests).toHaveLength(3);
  });

  it("gives up after the retry budget with the registry's error", async () => {
    const body = JSON.stringify({ errors: [{ code: "TOOMANYREQUESTS", message: "slow down" }] });
    const { client: c, requests } = client(
      () => new Response(body, { status: 429, headers: { "retry-after": "0" } }),
    );
    const error = await failure(c.getManifest(REF));
    expect(error.code).toBe("RATE_LIMITED");
    expect(error.status).toBe(429);
    expect(error.message).toMatch(/slow down/);
    expect(requests).toHaveLength(3);
  });

  it("does not wait for a Retry-After beyond a minute", async () => {
    const { client: c, requests } = client(
      () => new Response("", { status: 429, headers: { "retry-after": "3600" } }),
    );
    expect((await failure(c.getManifest(REF))).code).toBe("RATE_LIMITED");
    expect(requests).toHaveLength(1);
  });

  it("retries network errors, then reports NETWORK", async () => {
    const { client: c, requests } = client(() => {
      throw new TypeError("fetch failed", { cause: new Error("ECONNRESET") });
    });
    const error = await failure(c.getManifest(REF));
    expect(error.code).toBe("NETWORK");
    expect(error.message).toMatch(/ECONNRESET/);
    expect(requests).toHaveLength(3);
  });

  it("never retries a POST", async () => {
    const { client: c, requests } = client(() => new Response("", { status: 503 }));
    expect((await failure(c.mountBlob(REF, "other/repo", { digest: sha("x") }))).code).toBe("REGISTRY_ERROR");
    expect(requests).toHaveLength(1);
  });

  it("times out a body that stalls, with TIMEOUT", async () => {
    const blob = new Uint8Array(100);
    const { client: c } = client(
      () =>
        new Response(
          new ReadableStream({
            start(controller) {
              controller.enqueue(blob.subarray(0, 10));
            },
          }),
          { headers: { "content-length": "100" } },
        ),
      { timeout: 100 },
    );
    const stream = await c.fetchBlob(REF, { digest: sha(blob), size: 100 });
    expect((await failure(new Response(stream).arrayBuffer())).code).toBe("TIMEOUT");
  });

  it("stops with ABORTED when the caller aborts", async () => {
    const controller = new AbortController();
    const { client: c } = client(
      (request) =>
        new Promise((_, reject) => {
          if (request.signal.aborted) reject(request.signal.reason);
          request.signal.addEventListener("abort", () => reject(request.signal.reason));
        }),
    );
    const pending = c.getManifest(REF, { signal: controller.signal });
    controller.abort();
    expect((await failure(pending)).code).toBe("ABORTED");
  });
});

describe("manifest verification", () => {
  it("refuses a manifest that declares more than 4 MiB without reading it", async () => {
    let pulled = 0;
    const body = new ReadableStream({
      pull(c) {
        pulled++;
        c.enqueue(new Uint8Array(1024));
      },
    });
    const { client: c } = client(
      () => new Response(body, { headers: { "content-length": String(5 * 1024 * 1024) } }),
    );
    const error = await failure(c.getManifest(REF));
    expect(error.code).toBe("MANIFEST_INVALID");
    expect(pulled).toBeLessThan(5);
  });

  it("stops reading a manifest stream at 4 MiB when no length is declared", async () => {
    let sent = 0;
    const body = new ReadableStream({
      pull(c) {
        sent += 65536;
        c.enqueue(new Uint8Array(65536));
      },
    });
    const { client: c } = client(() => new Response(body));
    expect((await failure(c.getManifest(REF))).code).toBe("MANIFEST_INVALID");
    expect(sent).toBeLessThan(5 * 1024 * 1024);
  });

  it("refuses bytes that do not match Docker-Content-Digest", async () => {
    const { client: c } = client(() =>
      manifestResponse(manifestBody, { "docker-content-digest": sha("other") }),
    );
    expect((await failure(c.getManifest(REF))).code).toBe("DIGEST_MISMATCH");
  });

  it("refuses bytes that do not match the digest in the reference", async () => {
    const { client: c } = client(() => manifestResponse());
    expect((await failure(c.getManifest(`registry.test/ns/model@${sha("x")}`))).code).toBe("DIGEST_MISMATCH");
  });

  it("refuses an index that refers back to itself", async () => {
    const childDigest = sha("child");
    const index = JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: [{ mediaType: MediaType.OciIndex, digest: childDigest, size: 1 }],
    });
    const child = JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: [{ mediaType: MediaType.OciIndex, digest: sha(index), size: 1 }],
    });
    const { client: c } = client((request) => {
      const body =
        request.url.endsWith(sha(index)) || request.url.endsWith(":v1") || request.url.endsWith("/v1")
          ? index
          : child;
      return new Response(body, { headers: { "content-type": MediaType.OciIndex } });
    });
    // The child's digest in the index is a lie: the client notices that first.
    expect((await failure(c.getManifest(REF))).code).toBe("DIGEST_MISMATCH");
  });

  it("picks the index entry whose artifactType is a model", async () => {
    const model = manifestBody;
    const index = JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: [
        {
          mediaType: MediaType.OciManifest,
          digest: sha("image"),
          size: 1,
          platform: { os: "linux", architecture: "amd64" },
        },
        {
          mediaType: MediaType.OciManifest,
          digest: sha(model),
          size: model.length,
          artifactType: "application/vnd.cncf.model.manifest.v1+json",
        },
      ],
    });
    const { client: c, requests } = client((request) =>
      request.url.endsWith(sha(model))
        ? manifestResponse(model)
        : new Response(index, { headers: { "content-type": MediaType.OciIndex } }),
    );
    const result = await c.getManifest(REF);
    expect(result.digest).toBe(sha(model));
    expect(result.index?.digest).toBe(sha(index));
    expect(requests).toHaveLength(2);
  });
});

describe("blobs", () => {
  it("leaves cache headers alone outside browsers (no HTTP cache to bypass; CDNs would see no-cache)", async () => {
    const bytes = new TextEncoder().encode("blob");
    const { client: c, requests } = client(() => new Response(bytes));
    await new Response(await c.fetchBlob(REF, { digest: sha(bytes), size: bytes.byteLength })).arrayBuffer();
    expect(requests.map((r) => [r.cache, r.headers.get("cache-control")])).toEqual([["default", null]]);
  });

  const blob = new TextEncoder().encode("0123456789abcdef");

  it("fails at once with SIZE_MISMATCH when Content-Length disagrees with the descriptor", async () => {
    const { client: c } = client(() => new Response(blob, { headers: { "content-length": "16" } }));
    expect((await failure(c.fetchBlob(REF, { digest: sha(blob), size: 10 }))).code).toBe("SIZE_MISMATCH");
  });

  it("resumes with Range and skips the prefix when a server ignores Range", async () => {
    const { client: c, requests } = client(() => new Response(blob));
    const stream = await c.fetchBlob(
      REF,
      { digest: sha(blob), size: 16 },
      { offset: 6, prefix: new Blob([blob.subarray(0, 6)]).stream() },
    );
    expect(new TextDecoder().decode(await new Response(stream).arrayBuffer())).toBe("6789abcdef");
    expect(requests[0]?.headers.get("range")).toBe("bytes=6-");
  });

  it("uses a 206 answer as is", async () => {
    const { client: c } = client(
      () => new Response(blob.subarray(6), { status: 206, headers: { "content-range": "bytes 6-15/16" } }),
    );
    const stream = await c.fetchBlob(
      REF,
      { digest: sha(blob), size: 16 },
      { offset: 6, prefix: new Blob([blob.subarray(0, 6)]).stream() },
    );
    expect(new TextDecoder().decode(await new Response(stream).arrayBuffer())).toBe("6789abcdef");
  });

  describe("ranges", () => {
    const range = async (response: () => Response, offset: number, length: number) => {
      const { client: c } = client(response);
      const stream = await c.fetchBlobRange(REF, { digest: sha(blob), size: 16 }, { offset, length });
      return new TextDecoder().decode(await new Response(stream).arrayBuffer());
    };

    it("gives exactly the bytes asked for, whether the server honours Range or not", async () => {
      const exact = () =>
        new Response(blob.subarray(6, 10), {
          status: 206,
          headers: { "content-range": "bytes 6-9/16", "content-length": "4" },
        });
      expect(await range(exact, 6, 4)).toBe("6789");
      expect(await range(() => new Response(blob), 6, 4)).toBe("6789");
      // A 206 that sends more than asked, without a Content-Length to say so.
      expect(await range(() => new Response(blob.subarray(6), { status: 206 }), 6, 4)).toBe("6789");
    });

    it("fails with SIZE_MISMATCH when the server sends fewer bytes than asked", async () => {
      const short = () =>
        new Response(blob.subarray(6, 8), { status: 206, headers: { "content-range": "bytes 6-9/16" } });
      const error = await failure(range(short, 6, 4));
      expect(error.code).toBe("SIZE_MISMATCH");
      expect(error.message).toMatch(/sent 2 of 4 bytes/);
    });

    it("refuses a 206 that starts somewhere else (REGISTRY_ERROR)", async () => {
      const wrong = () =>
        new Response(blob.subarray(0, 4), {
          status: 206,
          headers: { "content-range": "bytes 0-3/16", "content-length": "4" },
        });
      const error = await failure(range(wrong, 6, 4));
      expect(error.code).toBe("REGISTRY_ERROR");
      expect(error.message).toMatch(/asked for bytes from 6, got from 0/);
    });
  });

  it("maps a registry error body to a stable code", async () => {
    const body = JSON.stringify({
      errors: [{ code: "DENIED", message: "requested access to the resource is denied" }],
    });
    const { client: c } = client(() => new Response(body, { status: 403 }));
    const error = await failure(c.fetchBlob(REF, { digest: sha(blob), size: 16 }));
    expect(error.code).toBe("DENIED");
    expect(error.message).toMatch(/^Cannot fetch blob .*requested access to the resource is denied/);
  });
});

describe("push", () => {
  /** Digests of the uploads the registry double completed: a PUT whose body came whole. */
  let completed: string[] = [];
  /**
   * A registry double's answers to an upload: PATCH bytes read, the PUT (with the last piece, or
   * none) finishes once its body has come whole, as a registry hashes it before it answers.
   */
  async function uploadsAnswer(request: Request): Promise<Response> {
    if (request.method === "HEAD") return new Response(null, { status: 404 });
    if (request.method === "POST") {
      completed = [];
      return new Response(null, { status: 202, headers: { location: "/up/1" } });
    }
    const body = await request.arrayBuffer();
    if (String(body.byteLength) !== (request.headers.get("content-length") ?? "0")) {
      throw new TypeError("the request body ended early");
    }
    if (request.method === "PATCH")
      return new Response(null, { status: 202, headers: { location: "/up/1" } });
    completed.push(new URL(request.url).searchParams.get("digest") ?? "");
    return new Response(null, { status: 201 });
  }
  const uploads = () => client(uploadsAnswer);
  it("refuses a stream longer than the descriptor with SIZE_MISMATCH, and cancels it", async () => {
    const { client: c, requests } = uploads();
    const bytes = new Uint8Array(101);
    let cancelled = false;
    const longer = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes);
      },
      cancel() {
        cancelled = true;
      },
    });
    const error = await failure(c.pushBlob(REF, { digest: sha(bytes), size: 100 }, longer));
    expect(error.code).toBe("SIZE_MISMATCH");
    expect(error.message).toMatch(/longer than the descriptor's 100 bytes/);
    expect(cancelled).toBe(true);
    expect(requests.map((r) => r.method)).toContain("PUT"); // the last piece's, whose body failed
    expect(completed).toEqual([]);
  });

  it("refuses a stream longer than the descriptor by a piece's worth, before the last piece is whole", async () => {
    const { client: c } = uploads();
    const bytes = new Uint8Array(300).fill(5);
    const error = await failure(
      c.pushBlob(REF, { digest: sha(bytes.subarray(0, 200)), size: 200 }, new Blob([bytes]).stream(), {
        chunkSize: 100,
      }),
    );
    expect(error.code).toBe("SIZE_MISMATCH");
    expect(completed).toEqual([]);
  });

  it("refuses a stream shorter than the descriptor with SIZE_MISMATCH", async () => {
    const { client: c, requests } = uploads();
    const bytes = new Uint8Array(99);
    const error = await failure(
      c.pushBlob(REF, { digest: sha(bytes), size: 100 }, new Blob([bytes]).stream()),
    );
    expect(error.code).toBe("SIZE_MISMATCH");
    expect(error.message).toMatch(/ended after 99 bytes/);
    expect(requests.map((r) => r.method)).toContain("PUT");
    expect(completed).toEqual([]);
  });

  it("sends each piece with its Content-Range and Content-Length, the last in the PUT that names the digest", async () => {
    const { client: c, requests } = uploads();
    const bytes = new Uint8Array(250).fill(1);
    await c.pushBlob(REF, { digest: sha(bytes), size: 250 }, new Blob([bytes]).stream(), { chunkSize: 100 });
    const pieces = requests.filter((r) => r.method === "PATCH" || r.method === "PUT");
    expect(
      pieces.map((r) => [
        r.method,
        new URL(r.url).searchParams.get("digest"),
        r.headers.get("content-range"),
        r.headers.get("content-length"),
      ]),
    ).toEqual([
      ["PATCH", null, "0-99", "100"],
      ["PATCH", null, "100-199", "100"],
      ["PUT", sha(bytes), "200-249", "50"],
    ]);
    expect(completed).toEqual([sha(bytes)]);
  });

  it("ends an empty stream's upload with a PUT and no body", async () => {
    const { client: c, requests } = uploads();
    const empty = new Uint8Array(0);
    await c.pushBlob(REF, { digest: sha(empty), size: 0 }, new Blob([]).stream());
    expect(requests.map((r) => r.method)).toEqual(["HEAD", "POST", "PUT"]);
    expect(completed).toEqual([sha(empty)]);
  });

  it("sends a streamed PATCH once: redirects refused and no window, so fetch keeps no copy of the body", async () => {
    // A fetch that may follow a redirect clones the request, and the clone's unread half of the teed
    // body holds every byte sent (nodejs/undici#4058): 256 MiB of RSS for a 256 MiB PATCH.
    const inits: RequestInit[] = [];
    const bytes = new Uint8Array(250).fill(2);
    const inner = createRegistryClient({
      retries: 0,
      fetch: (async (input: RequestInfo | URL, init?: RequestInit) => {
        inits.push(init ?? {});
        return uploadsAnswer(new Request(input, init));
      }) as typeof fetch,
    });
    await inner.pushBlob(REF, { digest: sha(bytes), size: 250 }, new Blob([bytes]).stream(), {
      chunkSize: 100,
    });
    const streamed = inits.filter((i) => i.method === "PATCH" || i.method === "PUT");
    expect(streamed.map((i) => i.method)).toEqual(["PATCH", "PATCH", "PUT"]);
    for (const init of streamed) {
      expect(init.body).toBeInstanceOf(ReadableStream);
      expect(init.redirect).toBe("error");
      expect(init.window).toBeNull();
    }
    // Other requests follow redirects by hand, as before.
    expect(inits.filter((i) => !streamed.includes(i)).every((i) => i.redirect === "manual")).toBe(true);
  });

  it("refuses a registry that redirects a streamed upload with REGISTRY_ERROR (real fetch, real server)", async () => {
    const server = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        if (req.method === "HEAD") res.writeHead(404);
        else if (req.method === "POST") res.writeHead(202, { location: "/v2/ns/model/blobs/uploads/1" });
        else res.writeHead(307, { location: "/elsewhere" });
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const c = createRegistryClient({ retries: 0 });
      const bytes = new Uint8Array(300).fill(3);
      const error = await failure(
        c.pushBlob(
          `127.0.0.1:${port}/ns/model:v1`,
          { digest: sha(bytes), size: 300 },
          new Blob([bytes]).stream(),
        ),
      );
      expect(error.code).toBe("REGISTRY_ERROR");
      expect(error.message).toMatch(/redirects a streamed upload, which cannot be sent twice/);
    } finally {
      server.close();
    }
  });

  it("refuses a redirect answered to a streamed upload by a fetch that passes redirects on (Workers' manual mode)", async () => {
    const { client: c, requests } = client(async (request) =>
      request.method === "PATCH" || request.method === "PUT"
        ? new Response(null, { status: 307, headers: { location: "/elsewhere" } })
        : uploadsAnswer(request),
    );
    const bytes = new Uint8Array(10).fill(4);
    const error = await failure(
      c.pushBlob(REF, { digest: sha(bytes), size: 10 }, new Blob([bytes]).stream()),
    );
    expect(error.code).toBe("REGISTRY_ERROR");
    expect(error.message).toMatch(/redirects a streamed upload/);
    expect(requests.map((r) => r.method)).toEqual(["HEAD", "POST", "PUT"]); // not sent again
  });

  it("refuses a chunkSize that is not a positive byte count", async () => {
    const { client: c } = uploads();
    const bytes = new Uint8Array(10);
    const error = await failure(
      c.pushBlob(REF, { digest: sha(bytes), size: 10 }, new Blob([bytes]).stream(), { chunkSize: 0 }),
    );
    expect(error.code).toBe("INVALID_ARGUMENT");
  });
});

describe("auth and redirects", () => {
  it("refuses a plain-http token realm for an https registry", async () => {
    const { client: c } = client(
      () =>
        new Response("", {
          status: 401,
          headers: { "www-authenticate": 'Bearer realm="http://evil.test/token"' },
        }),
    );
    const error = await failure(c.getManifest(REF));
    expect(error.code).toBe("REGISTRY_ERROR");
    expect(error.message).toMatch(/not https/);
  });

  it.each([
    ["not JSON", "<html>", /not JSON/],
    ["without a token", "{}", /holds no token/],
  ])("refuses a token response %s with UNAUTHORIZED", async (_, tokenBody, reason) => {
    const { client: c } = client((request) =>
      request.url.startsWith("https://auth.test/")
        ? new Response(tokenBody)
        : new Response("", {
            status: 401,
            headers: { "www-authenticate": 'Bearer realm="https://auth.test/token",service="s"' },
          }),
    );
    const error = await failure(c.getManifest(REF));
    expect(error.code).toBe("UNAUTHORIZED");
    expect(error.message).toMatch(reason);
  });

  it("sends Basic credentials after a Basic challenge, and only to the registry", async () => {
    const { client: c, requests } = client(
      (request) => {
        if (request.url.startsWith("https://cdn.test/")) return new Response("blob");
        if (!request.headers.get("authorization")) {
          return new Response("", { status: 401, headers: { "www-authenticate": 'Basic realm="r"' } });
        }
        return new Response("", { status: 307, headers: { location: "https://cdn.test/blob" } });
      },
      { credentials: { "registry.test": { username: "u", password: "p" } } },
    );
    const blob = new TextEncoder().encode("blob");
    await new Response(await c.fetchBlob(REF, { digest: sha(blob), size: 4 })).arrayBuffer();
    expect(requests.map((r) => [new URL(r.url).host, r.headers.get("authorization")])).toEqual([
      ["registry.test", null],
      ["registry.test", `Basic ${btoa("u:p")}`],
      ["cdn.test", null],
    ]);
  });

  it("refuses to follow a redirect from https to plain http", async () => {
    const { client: c } = client(
      () => new Response("", { status: 302, headers: { location: "http://cdn.test/blob" } }),
    );
    expect((await failure(c.fetchBlob(REF, { digest: sha("b"), size: 1 }))).message).toMatch(
      /https to plain http/,
    );
  });

  it("follows Link pagination for tags but never to another origin", async () => {
    const { client: c } = client((request) => {
      const url = new URL(request.url);
      if (url.searchParams.get("last") === "b") {
        return Response.json(
          { tags: ["c"] },
          { headers: { link: '<https://elsewhere.test/v2/x/tags/list?last=c>; rel="next"' } },
        );
      }
      return Response.json(
        { tags: ["a", "b"] },
        { headers: { link: '</v2/ns/model/tags/list?n=2&last=b>; rel="next"' } },
      );
    });
    const error = await failure(c.listTags(REF));
    expect(error.message).toMatch(/another origin/);
  });
});

describe("hostile auth servers", () => {
  it("refuses a public registry's realm on a private address, sending nothing there", async () => {
    const { client: c, requests } = client(
      () =>
        new Response("", {
          status: 401,
          headers: { "www-authenticate": 'Bearer realm="https://169.254.169.254/token",service="s"' },
        }),
      { credentials: { "registry.test": { username: "u", password: "p" } } },
    );
    const error = await failure(c.getManifest(REF));
    expect(error.code).toBe("REGISTRY_ERROR");
    expect(error.message).toMatch(/private address 169.254.169.254/);
    expect(requests.map((r) => new URL(r.url).host)).toEqual(["registry.test"]);
  });

  it("refuses a token response over 1 MiB without reading it all", async () => {
    const { client: c } = client((request) =>
      request.url.startsWith("https://auth.test/")
        ? new Response(new ReadableStream({ pull: (ctl) => ctl.enqueue(new Uint8Array(256 * 1024)) }))
        : new Response("", {
            status: 401,
            headers: { "www-authenticate": 'Bearer realm="https://auth.test/token"' },
          }),
    );
    const error = await failure(c.getManifest(REF));
    expect(error.code).toBe("UNAUTHORIZED");
    expect(error.message).toMatch(/limit/);
  });

  it("refuses a malformed challenge with REGISTRY_ERROR", async () => {
    const { client: c } = client(
      () => new Response("", { status: 401, headers: { "www-authenticate": 'Bearer realm="unterminated' } }),
    );
    expect((await failure(c.getManifest(REF))).code).toBe("REGISTRY_ERROR");
  });
});

describe("where credentials go", () => {
  const bearer = (realm = "https://auth.test/token") =>
    new Response("", {
      status: 401,
      headers: { "www-authenticate": `Bearer realm="${realm}",service="shared"` },
    });
  const creds = (request: Request) => request.headers.get("authorization");

  it("never sends registry A's token to registry B, even when both name the same realm and service", async () => {
    const tokenOf = (request: Request) => {
      const basic = creds(request);
      return basic === `Basic ${btoa("a:pa")}`
        ? "token-a"
        : basic === `Basic ${btoa("b:pb")}`
          ? "token-b"
          : "anon";
    };
    const { client: c, requests } = client(
      (request) => {
        const url = new URL(request.url);
        if (url.host === "auth.test") return Response.json({ token: tokenOf(request) });
        const mine = url.host === "a.test" ? "Bearer token-a" : "Bearer token-b";
        return creds(request) === mine ? manifestResponse() : bearer();
      },
      {
        credentials: {
          "a.test": { username: "a", password: "pa" },
          "b.test": { username: "b", password: "pb" },
        },
      },
    );
    await c.getManifest("a.test/ns/model:v1");
    await c.getManifest("b.test/ns/model:v1");
    const toB = requests.filter((r) => new URL(r.url).host === "b.test").map(creds);
    expect(toB).not.toContain("Bearer token-a");
    expect(toB.at(-1)).toBe("Bearer token-b");
  });

  it("keeps an anonymous token apart from a credentialed one for the same realm", async () => {
    const { client: c, requests } = client(
      (request) => {
        const url = new URL(request.url);
        if (url.host === "auth.test")
          return Response.json({ token: creds(request) ? "token-user" : "token-anon" });
        return creds(request) ? manifestResponse() : bearer();
      },
      { credentials: (registry) => (registry === "a.test" ? { username: "a", password: "pa" } : undefined) },
    );
    await c.getManifest("open.test/ns/model:v1");
    await c.getManifest("a.test/ns/model:v1");
    expect(requests.filter((r) => new URL(r.url).host === "auth.test").map(creds)).toEqual([
      null,
      `Basic ${btoa("a:pa")}`,
    ]);
    expect(
      requests
        .filter((r) => new URL(r.url).host === "a.test")
        .map(creds)
        .at(-1),
    ).toBe("Bearer token-user");
  });

  /** A registry double for an upload whose POST answers `location`; Basic auth on its own origin. */
  const uploadTo = (location: string, options: RegistryClientOptions = {}) =>
    client(
      async (request) => {
        const url = new URL(request.url);
        if (url.host === "registry.test" && url.protocol === "https:" && !creds(request))
          return new Response("", { status: 401, headers: { "www-authenticate": 'Basic realm="r"' } });
        if (request.method === "HEAD") return new Response(null, { status: 404 });
        if (request.method === "POST") return new Response(null, { status: 202, headers: { location } });
        return new Response(null, { status: 201 });
      },
      { credentials: { "registry.test": { username: "u", password: "p" } }, ...options },
    );
  const pushOne = (c: ReturnType<typeof createRegistryClient>) => {
    const bytes = new TextEncoder().encode("blob");
    return c.pushBlob(REF, { digest: sha(bytes), size: bytes.byteLength }, bytes);
  };

  it("refuses a plain-http upload location from an https registry, sending nothing there", async () => {
    const { client: c, requests } = uploadTo("http://registry.test/v2/ns/model/blobs/uploads/1");
    const error = await failure(pushOne(c));
    expect(error.code).toBe("REGISTRY_ERROR");
    expect(error.message).toMatch(/^Cannot push blob .*plain http/);
    expect(requests.filter((r) => r.url.startsWith("http:"))).toEqual([]);
  });

  it("sends no credentials to an upload location on another origin", async () => {
    const { client: c, requests } = uploadTo("https://uploads.test/session/1?sig=x");
    await pushOne(c);
    const put = requests.find((r) => r.method === "PUT");
    expect(put?.url).toMatch(/^https:\/\/uploads\.test\//);
    expect(creds(put as Request)).toBeNull();
  });

  it("sends credentials to an upload location on the registry's own origin", async () => {
    const { client: c, requests } = uploadTo("/v2/ns/model/blobs/uploads/1");
    await pushOne(c);
    expect(creds(requests.find((r) => r.method === "PUT") as Request)).toBe(`Basic ${btoa("u:p")}`);
  });

  it("sends credentials to an upload location the CORS proxy mapped from the registry's origin", async () => {
    const { client: c, requests } = client(
      (request) => {
        if (!creds(request))
          return new Response("", { status: 401, headers: { "www-authenticate": 'Basic realm="r"' } });
        if (request.method === "HEAD") return new Response(null, { status: 404 });
        if (request.method === "POST")
          return new Response(null, {
            status: 202,
            headers: { location: "https://p.test/registry.test/v2/ns/model/blobs/uploads/1" },
          });
        return new Response(null, { status: 201 });
      },
      { credentials: { "registry.test": { username: "u", password: "p" } }, proxy: "https://p.test" },
    );
    await pushOne(c);
    const put = requests.find((r) => r.method === "PUT") as Request;
    expect(put.url).toMatch(/^https:\/\/p\.test\/registry\.test\/v2\//);
    expect(creds(put)).toBe(`Basic ${btoa("u:p")}`);
  });

  it("sends a static token only to the registry's origin", async () => {
    const { client: c, requests } = uploadTo("https://uploads.test/session/1", {
      credentials: { "registry.test": { token: "static" } },
    });
    await pushOne(c);
    expect(requests.map((r) => [new URL(r.url).host, r.method, creds(r)])).toEqual([
      ["registry.test", "HEAD", "Bearer static"],
      ["registry.test", "POST", "Bearer static"],
      ["uploads.test", "PUT", null],
    ]);
  });

  it("sends credentials over plain http to a registry configured plain-http", async () => {
    const { client: c, requests } = client(
      (request) => {
        if (!creds(request))
          return new Response("", { status: 401, headers: { "www-authenticate": 'Basic realm="r"' } });
        if (request.method === "HEAD") return new Response(null, { status: 404 });
        if (request.method === "POST")
          return new Response(null, {
            status: 202,
            headers: { location: "http://registry.test/v2/ns/model/blobs/uploads/1" },
          });
        return new Response(null, { status: 201 });
      },
      { credentials: { "registry.test": { username: "u", password: "p" } }, plainHttp: ["registry.test"] },
    );
    await pushOne(c);
    expect(creds(requests.find((r) => r.method === "PUT") as Request)).toBe(`Basic ${btoa("u:p")}`);
  });

  it("answers a redirect target's challenge only anonymously: no credentials in the token exchange", async () => {
    const { client: c, requests } = client(
      (request) => {
        const url = new URL(request.url);
        if (url.host === "registry.test") {
          if (!creds(request))
            return new Response("", { status: 401, headers: { "www-authenticate": 'Basic realm="r"' } });
          return new Response("", { status: 307, headers: { location: "https://cdn.test/blob" } });
        }
        if (url.host === "cdn.test") return bearer("https://evil.test/token");
        return Response.json({ token: "stolen" });
      },
      { credentials: { "registry.test": { username: "u", password: "p" } } },
    );
    const error = await failure(c.fetchBlob(REF, { digest: sha("blob"), size: 4 }));
    expect(requests.map((r) => [new URL(r.url).host, creds(r)])).toEqual([
      ["registry.test", null],
      ["registry.test", `Basic ${btoa("u:p")}`],
      ["cdn.test", null],
      ["evil.test", null],
      ["cdn.test", "Bearer stolen"],
    ]);
    const token = new URL((requests.find((r) => new URL(r.url).host === "evil.test") as Request).url);
    expect(token.searchParams.get("account")).toBeNull();
    // cdn.test refused the anonymous token too: nothing better to send it.
    expect(error.code).toBe("UNAUTHORIZED");
    expect(error.message).toMatch(/^Cannot fetch blob .*https:\/\/cdn\.test/);
  });

  it("answers the challenge of a redirect target that fetch followed itself (browsers) only anonymously", async () => {
    const blob = new TextEncoder().encode("blob");
    const { client: c, requests } = client(
      (request) => {
        // A browser hides a redirect from `redirect: "manual"`, then follows it when asked to.
        if (request.redirect === "manual") return { type: "opaqueredirect", status: 0 } as Response;
        if (new URL(request.url).host === "auth.test") return Response.json({ token: "anon" });
        const answer =
          creds(request) === "Bearer anon" ? new Response(blob) : bearer("https://auth.test/token");
        Object.defineProperties(answer, {
          redirected: { value: new URL(request.url).host === "registry.test" },
          url: { value: "https://cdn.test/blob" },
        });
        return answer;
      },
      { credentials: { "registry.test": { token: "static" } } },
    );
    const bytes = await new Response(await c.fetchBlob(REF, { digest: sha(blob), size: 4 })).arrayBuffer();
    expect(new Uint8Array(bytes)).toEqual(blob);
    const followed = requests.filter((r) => r.redirect === "follow");
    expect(followed.map((r) => [new URL(r.url).host, creds(r)])).toEqual([
      // What the browser sends on to cdn.test is its business: it drops Authorization cross-origin.
      ["registry.test", "Bearer static"],
      ["auth.test", null],
      ["cdn.test", "Bearer anon"],
    ]);
  });

  /**
   * registry.k8s.io in miniature: the registry wants a Basic login, then redirects every /v2/ request
   * to a mirror on another origin, which wants an anonymous Bearer token from its own realm.
   */
  const redirectedToMirror = (realm = "https://mirror.test/v2/token") =>
    client(
      (request) => {
        const url = new URL(request.url);
        if (url.host === "registry.test") {
          if (creds(request) !== `Basic ${btoa("u:p")}`)
            return new Response("", { status: 401, headers: { "www-authenticate": 'Basic realm="r"' } });
          return new Response("", {
            status: 307,
            headers: { location: `https://mirror.test${url.pathname}` },
          });
        }
        if (url.pathname === "/v2/token") return Response.json({ token: creds(request) ? "leaked" : "anon" });
        return creds(request) === "Bearer anon" ? manifestResponse() : bearer(realm);
      },
      { credentials: { "registry.test": { username: "u", password: "p" } } },
    );

  it("answers a redirect target's Bearer challenge anonymously, never with the registry's credentials", async () => {
    const { client: c, requests } = redirectedToMirror();
    await c.getManifest(REF);
    await c.getManifest(REF);
    const at = (r: Request) => `${new URL(r.url).host}${new URL(r.url).pathname}`;
    const manifest = "/v2/ns/model/manifests/v1";
    expect(requests.map((r) => [at(r), creds(r)])).toEqual([
      [`registry.test${manifest}`, null],
      [`registry.test${manifest}`, `Basic ${btoa("u:p")}`],
      [`mirror.test${manifest}`, null],
      ["mirror.test/v2/token", null],
      [`mirror.test${manifest}`, "Bearer anon"],
      // The second request: the cached anonymous token goes with the redirect, no second 401.
      [`registry.test${manifest}`, `Basic ${btoa("u:p")}`],
      [`mirror.test${manifest}`, "Bearer anon"],
    ]);
    const token = new URL((requests.find((r) => at(r) === "mirror.test/v2/token") as Request).url);
    expect(token.searchParams.get("account")).toBeNull();
  });

  it("refuses a redirect target's realm on a private address, sending nothing there", async () => {
    const { client: c, requests } = redirectedToMirror("https://10.0.0.1/token");
    const error = await failure(c.getManifest(REF));
    expect(error.code).toBe("REGISTRY_ERROR");
    expect(error.message).toMatch(/private address 10\.0\.0\.1/);
    expect(requests.map((r) => new URL(r.url).host)).not.toContain("10.0.0.1");
  });

  it("keys tokens by login where crypto.subtle is missing (a page over plain http), two logins apart", async () => {
    const logins: Record<string, { username: string; password: string }> = {
      "a.test": { username: "u", password: "p1" },
      "b.test": { username: "u", password: "p2" },
    };
    const { client: c, requests } = client(
      (request) => {
        const url = new URL(request.url);
        if (url.host === "auth.test") return Response.json({ token: `t-${creds(request)}` });
        return creds(request)?.startsWith("Bearer t-") ? manifestResponse() : bearer();
      },
      // One registry whose login changes between pulls: the second must not reuse the first's token.
      { credentials: () => logins[current] },
    );
    let current = "a.test";
    const crypto = globalThis.crypto as { subtle?: unknown };
    Object.defineProperty(crypto, "subtle", { value: undefined, configurable: true });
    try {
      await c.getManifest(REF);
      current = "b.test";
      await c.getManifest(REF);
    } finally {
      delete crypto.subtle;
    }
    expect(globalThis.crypto.subtle).toBeDefined();
    expect(requests.filter((r) => new URL(r.url).host === "auth.test").map(creds)).toEqual([
      `Basic ${btoa("u:p1")}`,
      `Basic ${btoa("u:p2")}`,
    ]);
    expect(
      requests
        .filter((r) => new URL(r.url).host === "registry.test")
        .map(creds)
        .at(-1),
    ).toBe(`Bearer t-Basic ${btoa("u:p2")}`);
  });

  it("never answers a redirect target's Basic challenge with the registry's credentials", async () => {
    const { client: c, requests } = client(
      (request) =>
        new URL(request.url).host === "registry.test"
          ? new Response("", { status: 307, headers: { location: "https://cdn.test/blob" } })
          : new Response("", { status: 401, headers: { "www-authenticate": 'Basic realm="cdn"' } }),
      { credentials: { "registry.test": { username: "u", password: "p" } } },
    );
    expect((await failure(c.fetchBlob(REF, { digest: sha("blob"), size: 4 }))).code).toBe("UNAUTHORIZED");
    expect(requests.map(creds)).toEqual([null, null]);
  });
});
