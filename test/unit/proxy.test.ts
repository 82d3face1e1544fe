import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { upstreamHosts } from "../../src/proxy/hosts.js";
import { type CacheLike, createRegistryProxy, type RegistryProxyOptions } from "../../src/proxy/index.js";
import { isPrivateHost } from "../../src/registry/hosts.js";
import { toProxyUrl } from "../../src/registry/proxy-url.js";

const PROXY = "https://proxy.test";

/** A proxy whose upstream is an in-memory double that records what reached it. */
function proxyWith(
  upstream: (request: Request) => Response | Promise<Response>,
  options: Partial<RegistryProxyOptions> = {},
) {
  const seen: Request[] = [];
  const fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    seen.push(request);
    return upstream(request);
  }) as typeof globalThis.fetch;
  return { seen, proxy: createRegistryProxy({ allow: ["registry.test"], fetch, ...options }) };
}

const get = (path: string, headers: Record<string, string> = {}, method = "GET") =>
  new Request(`${PROXY}${path}`, { method, headers });

/** The reason a refusal gives, without the proxy's prefix. */
async function reason(response: Response): Promise<string> {
  const { errors } = (await response.json()) as { errors: { code: string; message: string }[] };
  return (errors[0]?.message ?? "").replace(/^oci-model-loader proxy: /, "");
}

/** `size` bytes streamed in chunks of `chunk` bytes, with no length known up front. */
function chunked(size: number, chunk: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= size) return controller.close();
      const part = new Uint8Array(Math.min(chunk, size - sent)).fill(1);
      sent += part.byteLength;
      controller.enqueue(part);
    },
  });
}

describe("registry proxy: what it refuses", () => {
  it.each([
    ["a host not on the allow-list", "/evil.test/v2/", "evil.test"],
    ["the cloud metadata address", "/169.254.169.254/latest/meta-data/", "169.254.169.254"],
    ["a loopback address", "/127.0.0.1:5000/v2/", "127.0.0.1:5000"],
    ["a numeric loopback alias", "/2130706433/v2/", "2130706433"],
    ["a private IPv6 address", "/[fd00::1]/v2/", "[fd00::1]"],
  ])("answers 403 for %s without any outbound request", async (_, path, host) => {
    const { proxy, seen } = proxyWith(() => new Response("should not be reached"));
    const response = await proxy(get(path, { origin: "https://app.test" }));
    expect(response.status).toBe(403);
    expect(response.headers.get("access-control-allow-origin")).toBe("*");
    expect((await response.clone().json()).errors[0].code).toBe("DENIED");
    expect(await reason(response)).toBe(`${host} is not on this proxy's allow-list`);
    expect(seen).toHaveLength(0);
  });

  it.each([
    ["no host", "/", 404, "use <proxy>/<registry-host>/v2/…, e.g. /registry-1.docker.io/v2/"],
    ["a path outside the proxy's base", "/elsewhere/registry.test/v2/", 404, undefined],
  ])("answers a request for %s without any outbound request", async (_, path, status, why) => {
    const { proxy, seen } = proxyWith(() => new Response("should not be reached"), {
      publicUrl: path.startsWith("/elsewhere") ? "https://proxy.test/base" : undefined,
    });
    const response = await proxy(get(path));
    expect(response.status).toBe(status);
    // A registry-style error body: JSON, with the code a registry would give.
    expect(response.headers.get("content-type")).toBe("application/json");
    expect((await response.clone().json()).errors[0].code).toBe("UNKNOWN");
    if (why) expect(await reason(response)).toBe(why);
    expect(seen).toHaveLength(0);
  });

  it("answers a preflight without an Origin with a bare 204", async () => {
    const { proxy, seen } = proxyWith(() => new Response("x"));
    const response = await proxy(get("/registry.test/v2/", {}, "OPTIONS"));
    expect(response.status).toBe(204);
    expect(response.headers.get("access-control-allow-origin")).toBeNull();
    expect(seen).toHaveLength(0);
  });

  it("refuses origins that are not allowed, preflight included", async () => {
    const { proxy, seen } = proxyWith(() => new Response("x"), { origins: ["https://app.test"] });
    const refused = await proxy(get("/registry.test/v2/", { origin: "https://other.test" }));
    expect(refused.status).toBe(403);
    expect(await reason(refused)).toBe("this origin may not use the proxy");
    expect(refused.headers.get("access-control-allow-origin")).toBeNull();
    const pre = await proxy(
      get(
        "/registry.test/v2/",
        { origin: "https://other.test", "access-control-request-method": "GET" },
        "OPTIONS",
      ),
    );
    expect(pre.status).toBe(403);
    expect(seen).toHaveLength(0);
  });

  it("refuses a redirect to a private address", async () => {
    const { proxy, seen } = proxyWith(
      () => new Response(null, { status: 307, headers: { location: "https://169.254.169.254/" } }),
    );
    const response = await proxy(get("/registry.test/v2/a/blobs/sha256:00"));
    expect(response.status).toBe(403);
    expect(await reason(response)).toBe("refusing a redirect to the private address 169.254.169.254");
    expect(seen).toHaveLength(1);
  });

  it.each([
    "localhost.",
    "foo.localhost.",
    "[::127.0.0.1]",
    "[::ffff:0:7f00:1]",
    "[64:ff9b::a9fe:a9fe]",
    "[fec0::1]",
    "metadata.google.internal",
  ])("refuses a redirect to %s (no resolver, as on Workers)", async (host) => {
    const { proxy, seen } = proxyWith(
      () => new Response(null, { status: 307, headers: { location: `https://${host}/computeMetadata/v1/` } }),
    );
    const response = await proxy(get("/registry.test/v2/a/blobs/sha256:00"));
    expect(response.status).toBe(403);
    expect(await reason(response)).toMatch(/^refusing a redirect to the private address /);
    expect(seen).toHaveLength(1);
  });

  it.each(["localhost.", "[::ffff:0:7f00:1]", "metadata.google.internal"])(
    "does not open a token realm on %s named by a public registry",
    async (host) => {
      const { proxy, seen } = proxyWith(
        () =>
          new Response("", {
            status: 401,
            headers: { "www-authenticate": `Bearer realm="https://${host}/token",service="s"` },
          }),
      );
      const challenge = await proxy(get("/registry.test/v2/a/manifests/v1"));
      expect(challenge.headers.get("www-authenticate")).toContain(`realm="https://${host}/token"`);
      expect((await proxy(get(`/${host}/token`))).status).toBe(403);
      expect(seen).toHaveLength(1);
    },
  );

  it("matches an allow-list entry without a port on port 443 only, and one with a port on that port", async () => {
    const { proxy, seen } = proxyWith(() => new Response("ok"), {
      allow: ["registry.test", "other.test:8443"],
    });
    expect((await proxy(get("/registry.test/v2/"))).status).toBe(200);
    expect((await proxy(get("/registry.test:8443/v2/"))).status).toBe(403);
    expect((await proxy(get("/registry.test:22/v2/"))).status).toBe(403);
    expect((await proxy(get("/other.test:8443/v2/"))).status).toBe(200);
    expect((await proxy(get("/other.test/v2/"))).status).toBe(403);
    expect((await proxy(get("/other.test:443/v2/"))).status).toBe(403);
    expect(seen.map((r) => r.url)).toEqual(["https://registry.test/v2/", "https://other.test:8443/v2/"]);
  });

  it.each([
    ["myreg:80", "myreg:80"],
    ["myreg", "myreg"],
    ["myreg:80", "myreg"],
    ["myreg", "myreg:80"],
  ])(
    "opens the plain-http upstream allowed as %s, plain http as %s, on port 80 only",
    async (allow, plain) => {
      const { proxy, seen } = proxyWith(
        (request) =>
          request.url.startsWith("http://myreg/")
            ? new Response(null, { status: 307, headers: { location: "http://cdn.test:80/blob" } })
            : new Response("ok"),
        { allow: [allow, "registry.test"], plainHttp: [plain, "cdn.test:80"] },
      );
      // The client maps http://myreg:80/… to <proxy>/myreg/… (the URL parser drops the default port).
      expect(toProxyUrl(PROXY, new URL("http://myreg:80/v2/")).href).toBe(`${PROXY}/myreg/v2/`);
      expect((await proxy(get("/myreg/v2/"))).status).toBe(200);
      expect((await proxy(get("/myreg:443/v2/"))).status).toBe(403);
      expect((await proxy(get("/myreg:8080/v2/"))).status).toBe(403);
      expect(seen.map((r) => r.url)).toEqual(["http://myreg/v2/", "http://cdn.test/blob"]);
    },
  );

  it("normalises its lists: presets expanded, case and blanks ignored, loopback and plain-http hosts on port 80", () => {
    const { allowed, plainHttp } = upstreamHosts(
      [
        " DockerHub ",
        "GHCR",
        "",
        "  ",
        "Reg.Test:443",
        "localhost:5000",
        "[::1]",
        "myreg",
        "other.test:8443",
      ],
      [" MyReg:80 ", "", "plain.test"],
    );
    expect([...allowed].sort()).toEqual(
      [
        "registry-1.docker.io",
        "auth.docker.io",
        "ghcr.io",
        "reg.test",
        "localhost:5000",
        "[::1]",
        "myreg",
        "other.test:8443",
      ].sort(),
    );
    expect([...plainHttp].sort()).toEqual(["myreg", "plain.test"]);
    // A plain-http host keeps a port other than 80; an https host drops 443.
    expect([...upstreamHosts(["myreg:443", "tls.test:80"], ["myreg:443"]).allowed]).toEqual([
      "myreg:443",
      "tls.test:80",
    ]);
  });

  it.each([
    "/registry.test",
    "registry.test/",
    "registry.test?x",
    "registry.test#x",
    "reg\tistry.test",
    "a@b",
  ])("refuses the allow-list entry %j, saying which and why", (entry) => {
    expect(() => upstreamHosts([entry], [])).toThrow(
      expect.objectContaining({
        code: "INVALID_ARGUMENT",
        message: `Cannot create the registry proxy: the allow-list entry "${entry}" is neither a preset nor a host[:port]`,
      }),
    );
  });

  it("names the plainHttp entry it refuses", () => {
    expect(() => upstreamHosts([], ["Bad/Entry"])).toThrow(
      expect.objectContaining({
        message: 'Cannot create the registry proxy: the plainHttp entry "Bad/Entry" is not a host[:port]',
      }),
    );
  });

  it("refuses a plainHttp entry that is not a host[:port] when created", () => {
    expect(() => createRegistryProxy({ allow: ["myreg"], plainHttp: ["http://myreg"] })).toThrow(
      expect.objectContaining({
        code: "INVALID_ARGUMENT",
        message: expect.stringMatching(/plainHttp entry/),
      }),
    );
  });

  it.each(["https://registry.test", "registry.test/v2", "user@registry.test", "registry.test:99999"])(
    "refuses the allow-list entry %s when created",
    (entry) => {
      expect(() => createRegistryProxy({ allow: [entry] })).toThrow(
        expect.objectContaining({ code: "INVALID_ARGUMENT" }),
      );
    },
  );

  it("classifies private hosts", () => {
    for (const host of [
      "localhost",
      "a.localhost",
      "127.1",
      "10.0.0.1",
      "172.20.1.1",
      "192.168.0.1",
      "169.254.169.254",
      "100.64.0.1",
      "0.0.0.0",
      "[::1]",
      "[fe80::1]",
      "[::ffff:10.0.0.1]",
      "0x7f000001",
    ]) {
      expect(isPrivateHost(host), host).toBe(true);
    }
    for (const host of [
      "registry-1.docker.io",
      "8.8.8.8",
      "172.32.0.1",
      "[2606:4700::1111]",
      "ghcr.io:443",
    ]) {
      expect(isPrivateHost(host), host).toBe(false);
    }
  });
});

describe("registry proxy: CORS", () => {
  it("answers a preflight with the headers the registry protocol needs", async () => {
    const { proxy, seen } = proxyWith(() => new Response("x"));
    const response = await proxy(
      get(
        "/registry.test/v2/",
        {
          origin: "https://app.test",
          "access-control-request-method": "GET",
          "access-control-request-headers": "authorization,range",
        },
        "OPTIONS",
      ),
    );
    expect(response.status).toBe(204);
    expect(response.headers.get("access-control-allow-origin")).toBe("*");
    const allowed = response.headers.get("access-control-allow-headers") ?? "";
    for (const h of ["authorization", "range", "accept"]) expect(allowed).toContain(h);
    expect(response.headers.get("access-control-allow-credentials")).toBeNull();
    expect(seen).toHaveLength(0);
  });

  it("exposes the registry headers and echoes a listed origin", async () => {
    const { proxy } = proxyWith(
      () =>
        new Response("{}", {
          headers: {
            "docker-content-digest": "sha256:x",
            "access-control-allow-origin": "https://evil.test",
            "set-cookie": "a=b",
          },
        }),
      { origins: ["https://app.test"] },
    );
    const response = await proxy(get("/registry.test/v2/", { origin: "https://app.test" }));
    expect(response.headers.get("access-control-allow-origin")).toBe("https://app.test");
    expect(response.headers.get("vary")).toContain("Origin");
    const exposed = response.headers.get("access-control-expose-headers") ?? "";
    for (const h of [
      "www-authenticate",
      "docker-content-digest",
      "content-range",
      "content-length",
      "link",
      "location",
      "retry-after",
    ]) {
      expect(exposed).toContain(h);
    }
    expect(response.headers.get("set-cookie")).toBeNull();
  });
});

describe("registry proxy: forwarding", () => {
  it("forwards only registry headers, never cookies", async () => {
    const { proxy, seen } = proxyWith(() => new Response("ok"));
    await proxy(
      get("/registry.test/v2/a/manifests/v1?x=1", {
        authorization: "Bearer t",
        cookie: "s=1",
        accept: "application/json",
        origin: "https://app.test",
        "x-forwarded-for": "1.2.3.4",
      }),
    );
    const upstream = seen[0] as Request;
    expect(upstream.url).toBe("https://registry.test/v2/a/manifests/v1?x=1");
    expect(upstream.headers.get("authorization")).toBe("Bearer t");
    expect(upstream.headers.get("accept")).toBe("application/json");
    expect(upstream.headers.get("cookie")).toBeNull();
    expect(upstream.headers.get("origin")).toBeNull();
    expect(upstream.headers.get("x-forwarded-for")).toBeNull();
    // Bodies come back as sent, so lengths and digests describe them.
    expect(upstream.headers.get("accept-encoding")).toBe("identity");
  });

  it("rewrites challenge realms through itself and lets only that realm through, only for a while", async () => {
    let clock = 0;
    const { proxy, seen } = proxyWith(
      (request) =>
        request.url.startsWith("https://auth.test/")
          ? Response.json({ token: "t" })
          : new Response("", {
              status: 401,
              headers: {
                "www-authenticate":
                  'Bearer realm="https://auth.test/token",service="reg",scope="repository:a:pull"',
              },
            }),
      { now: () => clock, realmTtlMs: 1000 },
    );
    const challenge = await proxy(get("/registry.test/v2/a/manifests/v1"));
    expect(challenge.headers.get("www-authenticate")).toBe(
      'Bearer realm="https://proxy.test/auth.test/token",service="reg",scope="repository:a:pull"',
    );
    expect((await proxy(get("/auth.test/token?service=reg"))).status).toBe(200);
    expect((await proxy(get("/auth.test/other"))).status).toBe(403);
    expect((await proxy(get("/auth.test/token", {}, "POST"))).status).toBe(403);
    clock = 999;
    expect((await proxy(get("/auth.test/token"))).status).toBe(200);
    clock = 1000; // open for realmTtlMs, not a moment longer
    expect((await proxy(get("/auth.test/token"))).status).toBe(403);
    clock = 0; // and once expired it is forgotten
    expect((await proxy(get("/auth.test/token"))).status).toBe(403);
    expect(seen.map((r) => new URL(r.url).host)).toEqual(["registry.test", "auth.test", "auth.test"]);
  });

  it("lets an identity token's OAuth2 form POST through to an opened realm, small, and nothing else posted there", async () => {
    const bodies: string[] = [];
    const { proxy, seen } = proxyWith(async (request) => {
      if (!request.url.startsWith("https://auth.test/"))
        return new Response("", {
          status: 401,
          headers: { "www-authenticate": 'Bearer realm="https://auth.test/token",service="reg"' },
        });
      bodies.push(await request.text());
      return Response.json({ access_token: "t" });
    });
    await proxy(get("/registry.test/v2/a/manifests/v1"));
    const post = (body: string, type = "application/x-www-form-urlencoded", path = "/auth.test/token") =>
      proxy(new Request(`${PROXY}${path}`, { method: "POST", headers: { "content-type": type }, body }));
    const form = "grant_type=refresh_token&refresh_token=r1&service=reg&client_id=c";
    const answer = await post(form, "application/x-www-form-urlencoded; charset=utf-8");
    expect(answer.status).toBe(200);
    expect(await answer.json()).toEqual({ access_token: "t" });
    expect(bodies).toEqual([form]);
    // Not a form, not the realm's path, not a POST: refused before any request goes out.
    expect((await post('{"grant_type":"refresh_token"}', "application/json")).status).toBe(403);
    expect((await post(form, "text/plain; x=application/x-www-form-urlencoded")).status).toBe(403);
    expect((await post(form, "application/x-www-form-urlencoded", "/auth.test/other")).status).toBe(403);
    const put = new Request(`${PROXY}/auth.test/token`, {
      method: "PUT",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: form,
    });
    expect((await proxy(put)).status).toBe(403);
    // A realm takes a token form, not an upload: 64 KiB at most, declared or streamed.
    const big = await post(`refresh_token=${"x".repeat(64 * 1024)}`);
    expect(big.status).toBe(413);
    expect(await reason(big)).toBe("request bodies are limited to 65536 bytes");
    expect((await post(`refresh_token=${"x".repeat(64 * 1024 - 14)}`)).status).toBe(200);
    const streamed = await proxy(
      new Request(`${PROXY}/auth.test/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: chunked(64 * 1024 + 1, 4096),
        duplex: "half",
      } as RequestInit),
    );
    expect(streamed.status).toBe(413);
    // Only the two forms within the limit reached the realm whole.
    expect(bodies).toHaveLength(2);
    expect(seen.every((r) => r.method !== "PUT")).toBe(true);
  });

  it.each(["https://public.test/base", "https://public.test/base/"])(
    "serves under the public URL %s",
    async (publicUrl) => {
      const { proxy, seen } = proxyWith(
        () =>
          new Response("", {
            status: 401,
            headers: { "www-authenticate": 'Bearer realm="https://auth.test/token"' },
          }),
        { publicUrl },
      );
      const challenge = await proxy(new Request("http://10.0.0.2:8080/base/registry.test/v2/"));
      expect(challenge.headers.get("www-authenticate")).toBe(
        'Bearer realm="https://public.test/base/auth.test/token"',
      );
      expect(seen.map((r) => r.url)).toEqual(["https://registry.test/v2/"]);
    },
  );

  it("follows a blob redirect itself, keeping Range and dropping Authorization on the host change", async () => {
    const { proxy, seen } = proxyWith((request) =>
      request.url.startsWith("https://cdn.test/")
        ? new Response("partial", { status: 206, headers: { "content-range": "bytes 5-11/12" } })
        : new Response(null, { status: 307, headers: { location: "https://cdn.test/signed?sig=1" } }),
    );
    const response = await proxy(
      get("/registry.test/v2/a/blobs/sha256:ab", { authorization: "Bearer t", range: "bytes=5-" }),
    );
    expect(response.status).toBe(206);
    expect(await response.text()).toBe("partial");
    const [first, second] = seen;
    expect(first?.headers.get("authorization")).toBe("Bearer t");
    expect(second?.url).toBe("https://cdn.test/signed?sig=1");
    expect(second?.headers.get("authorization")).toBeNull();
    expect(second?.headers.get("range")).toBe("bytes=5-");
  });

  it("passes on no challenge from a redirect target, and opens no realm it names", async () => {
    const { proxy, seen } = proxyWith((request) =>
      request.url.startsWith("https://cdn.example/")
        ? new Response("", {
            status: 401,
            headers: { "www-authenticate": 'Bearer realm="https://evil.example/token",service="cdn"' },
          })
        : new Response(null, { status: 307, headers: { location: "https://cdn.example/signed?sig=1" } }),
    );
    const response = await proxy(
      get("/registry.test/v2/a/blobs/sha256:ab", { origin: "https://app.test", authorization: "Bearer t" }),
    );
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toBeNull();
    expect(seen.map((r) => new URL(r.url).host)).toEqual(["registry.test", "cdn.example"]);
    expect((await proxy(get("/evil.example/token?service=cdn"))).status).toBe(403);
    expect(seen).toHaveLength(2);
  });

  it("rewrites upload Locations and Link pagination to stay on the proxy", async () => {
    const { proxy } = proxyWith((request) =>
      request.method === "POST"
        ? new Response(null, { status: 202, headers: { location: "/v2/a/blobs/uploads/u1?_state=s" } })
        : new Response("{}", { headers: { link: '</v2/a/tags/list?n=1&last=b>; rel="next"' } }),
    );
    const upload = await proxy(get("/registry.test/v2/a/blobs/uploads/", {}, "POST"));
    expect(upload.headers.get("location")).toBe(
      "https://proxy.test/registry.test/v2/a/blobs/uploads/u1?_state=s",
    );
    const tags = await proxy(get("/registry.test/v2/a/tags/list?n=1"));
    expect(tags.headers.get("link")).toBe(
      '<https://proxy.test/registry.test/v2/a/tags/list?n=1&last=b>; rel="next"',
    );
  });

  it.each([
    [
      "a malformed header as it is",
      'Bearer realm="https://auth.test/token',
      'Bearer realm="https://auth.test/token',
    ],
    [
      "a Basic challenge as it is",
      'Basic realm="https://auth.test/token"',
      'Basic realm="https://auth.test/token"',
    ],
    ["a token68 challenge as it is", "negotiate abc=", "Negotiate abc="],
    [
      "a realm that is not a URL as it is",
      'Bearer realm="auth.test/token"',
      'Bearer realm="auth.test/token"',
    ],
    [
      "a realm that is not http as it is",
      'Bearer realm="ftp://auth.test/token"',
      'Bearer realm="ftp://auth.test/token"',
    ],
  ])("passes %s, opening no realm", async (_, header, passed) => {
    const { proxy, seen } = proxyWith(
      () => new Response("", { status: 401, headers: { "www-authenticate": header } }),
    );
    const challenge = await proxy(get("/registry.test/v2/a/manifests/v1"));
    expect(challenge.headers.get("www-authenticate")).toBe(passed);
    expect((await proxy(get("/auth.test/token"))).status).toBe(403);
    expect(seen).toHaveLength(1);
  });

  it("rewrites the Bearer realm among several challenges, keeping quotes and backslashes escaped", async () => {
    const { proxy, seen } = proxyWith((request) =>
      request.url.startsWith("https://auth.test/")
        ? Response.json({ token: "t" })
        : new Response("", {
            status: 401,
            headers: {
              "www-authenticate":
                'Basic realm="r", Bearer realm="https://auth.test/token",error_description="a \\"quoted\\" \\\\ word"',
            },
          }),
    );
    const challenge = await proxy(get("/registry.test/v2/a/manifests/v1"));
    expect(challenge.headers.get("www-authenticate")).toBe(
      'Basic realm="r", Bearer realm="https://proxy.test/auth.test/token",error_description="a \\"quoted\\" \\\\ word"',
    );
    expect((await proxy(get("/auth.test/token"))).status).toBe(200);
    expect(seen.map((r) => r.url)).toEqual([
      "https://registry.test/v2/a/manifests/v1",
      "https://auth.test/token",
    ]);
  });

  it("opens a private realm named by a private registry on the allow-list", async () => {
    const { proxy, seen } = proxyWith(
      (request) =>
        new URL(request.url).port === "5001"
          ? Response.json({ token: "t" })
          : new Response("", {
              status: 401,
              headers: { "www-authenticate": 'Bearer realm="http://localhost:5001/token",service="s"' },
            }),
      { allow: ["localhost:5000"] },
    );
    const challenge = await proxy(get("/localhost:5000/v2/"));
    expect(challenge.headers.get("www-authenticate")).toBe(
      'Bearer realm="https://proxy.test/localhost:5001/token",service="s"',
    );
    expect((await proxy(get("/localhost:5001/token?service=s"))).status).toBe(200);
    expect(seen.map((r) => r.url)).toEqual([
      "http://localhost:5000/v2/",
      "http://localhost:5001/token?service=s",
    ]);
  });

  it("passes on no hop-by-hop, cookie or CORS header of the registry's", async () => {
    const { proxy } = proxyWith(
      () =>
        new Response("{}", {
          headers: {
            connection: "close",
            "keep-alive": "timeout=5",
            "set-cookie": "a=b",
            "access-control-allow-methods": "DELETE",
            "docker-distribution-api-version": "registry/2.0",
          },
        }),
    );
    const response = await proxy(get("/registry.test/v2/"));
    for (const name of ["connection", "keep-alive", "set-cookie", "access-control-allow-methods"]) {
      expect(response.headers.get(name), name).toBeNull();
    }
    expect(response.headers.get("docker-distribution-api-version")).toBe("registry/2.0");
    // Nothing is made up either: no challenge, and no CORS headers for a request without an Origin.
    expect(response.headers.get("www-authenticate")).toBeNull();
    expect(response.headers.get("access-control-allow-origin")).toBeNull();
    expect(response.headers.get("access-control-expose-headers")).toBeNull();
    expect(response.headers.get("location")).toBeNull();
  });

  it("drops Content-Length and Content-Encoding of a body fetch decoded", async () => {
    const { proxy } = proxyWith(
      () =>
        new Response("decoded", {
          headers: { "content-encoding": "gzip", "content-length": "3", "docker-content-digest": "sha256:x" },
        }),
    );
    const response = await proxy(get("/registry.test/v2/a/blobs/sha256:00"));
    expect(response.headers.get("content-encoding")).toBeNull();
    expect(response.headers.get("content-length")).toBeNull();
    expect(response.headers.get("docker-content-digest")).toBe("sha256:x");
    expect(await response.text()).toBe("decoded");
  });

  it("keeps the Content-Length of a body that was not encoded", async () => {
    const { proxy } = proxyWith(() => new Response("abc", { headers: { "content-length": "3" } }));
    expect((await proxy(get("/registry.test/v2/a/blobs/sha256:00"))).headers.get("content-length")).toBe("3");
  });

  it("passes on a malformed Location or Link target as it is", async () => {
    const { proxy } = proxyWith(
      () =>
        new Response("{}", {
          status: 201,
          headers: {
            location: "http://[oops/",
            link: '<http://[oops/>; rel="a", </v2/a/tags/list?n=1>; rel="next"',
          },
        }),
    );
    const response = await proxy(get("/registry.test/v2/a/blobs/uploads/", {}, "POST"));
    expect(response.status).toBe(201);
    expect(response.headers.get("location")).toBe("http://[oops/");
    expect(response.headers.get("link")).toBe(
      '<http://[oops/>; rel="a", <https://proxy.test/registry.test/v2/a/tags/list?n=1>; rel="next"',
    );
  });

  it("leaves a Location that is not http as it is", async () => {
    const { proxy } = proxyWith(
      () => new Response(null, { status: 201, headers: { location: "mailto:ops@registry.test" } }),
    );
    const response = await proxy(get("/registry.test/v2/a/blobs/uploads/", {}, "POST"));
    expect(response.headers.get("location")).toBe("mailto:ops@registry.test");
  });

  it("expands presets", async () => {
    const { proxy, seen } = proxyWith(() => new Response("ok"), { allow: ["dockerhub"] });
    expect((await proxy(get("/registry-1.docker.io/v2/"))).status).toBe(200);
    expect((await proxy(get("/auth.docker.io/token"))).status).toBe(200);
    expect(seen).toHaveLength(2);
  });
});

describe("registry proxy: redirects", () => {
  /** registry.test redirects its blob to `location`; every other host answers "blob". */
  const redirecting = (location: string, options: Partial<RegistryProxyOptions> = {}, status = 307) =>
    proxyWith(
      (request) =>
        new URL(request.url).host === "registry.test"
          ? new Response(null, { status, headers: { location } })
          : new Response(`blob from ${new URL(request.url).host}`),
      options,
    );
  const BLOB = "/registry.test/v2/a/blobs/sha256:00";

  // One guard each: the target trips only the guard named.
  it.each([
    [
      "a private address over https",
      "https://10.0.0.1/blob",
      "refusing a redirect to the private address 10.0.0.1",
    ],
    ["a public host over plain http", "http://cdn.test/blob", "refusing a redirect from https to plain http"],
    ["file:", "file:///etc/passwd", "refusing a redirect to file:"],
    ["ftp:", "ftp://cdn.test/blob", "refusing a redirect to ftp:"],
    ["data:", "data:text/plain,x", "refusing a redirect to data:"],
  ])("refuses a redirect to %s, saying why, without following it", async (_, location, why) => {
    const { proxy, seen } = redirecting(location);
    const response = await proxy(get(BLOB, { origin: "https://app.test" }));
    expect(response.status).toBe(403);
    expect(response.headers.get("access-control-allow-origin")).toBe("*");
    expect(await reason(response)).toBe(why);
    expect(seen.map((r) => r.url)).toEqual(["https://registry.test/v2/a/blobs/sha256:00"]);
  });

  it("follows a redirect from https to a plain-http host listed in plainHttp", async () => {
    const { proxy, seen } = redirecting("http://cdn.test/blob", { plainHttp: ["cdn.test"] });
    const response = await proxy(get(BLOB));
    expect(await response.text()).toBe("blob from cdn.test");
    expect(seen.map((r) => r.url)).toEqual([
      "https://registry.test/v2/a/blobs/sha256:00",
      "http://cdn.test/blob",
    ]);
  });

  it("follows a redirect to a private address that is on the allow-list", async () => {
    const { proxy } = redirecting("https://10.0.0.1/blob", { allow: ["registry.test", "10.0.0.1"] });
    expect(await (await proxy(get(BLOB))).text()).toBe("blob from 10.0.0.1");
  });

  it.each([
    "http://127.0.0.1:9000/blob",
    "http://[::1]:9000/blob",
    "http://localhost:9000/blob",
    "http://10.0.0.1/blob",
  ])("follows a private registry's redirect to %s, with a resolver as in Node", async (location) => {
    // A resolver that answers as dns.lookup does: a literal resolves to itself, localhost to loopback.
    const looked: string[] = [];
    const resolve = async (name: string) => {
      looked.push(name);
      return [name === "localhost" ? "127.0.0.1" : name.replace(/^\[|\]$/g, "")];
    };
    const { proxy, seen } = proxyWith(
      (request) =>
        new URL(request.url).port === "5000"
          ? new Response(null, { status: 307, headers: { location } })
          : new Response("local blob"),
      { allow: ["127.0.0.1:5000"], resolve },
    );
    const response = await proxy(get("/127.0.0.1:5000/v2/a/blobs/sha256:00"));
    expect(await response.text()).toBe("local blob");
    expect(seen.map((r) => r.url)).toEqual(["http://127.0.0.1:5000/v2/a/blobs/sha256:00", location]);
    expect(looked).toEqual([]); // literals and localhost are never looked up
  });

  it.each([301, 302, 303, 307, 308])("follows a %i for GET and HEAD", async (status) => {
    for (const method of ["GET", "HEAD"]) {
      const { proxy, seen } = redirecting("https://cdn.test/blob", {}, status);
      const response = await proxy(get(BLOB, {}, method));
      expect(response.status).toBe(200);
      expect(seen.map((r) => `${r.method} ${r.url}`)).toEqual([
        `${method} https://registry.test/v2/a/blobs/sha256:00`,
        `${method} https://cdn.test/blob`,
      ]);
    }
  });

  it.each([300, 304])("passes a %i back as it is", async (status) => {
    const { proxy, seen } = redirecting("https://cdn.test/blob", {}, status);
    const response = await proxy(get(BLOB));
    expect(response.status).toBe(status);
    expect(response.headers.get("location")).toBe("https://proxy.test/cdn.test/blob");
    expect(seen).toHaveLength(1);
  });

  it("passes a redirect without a Location back as it is", async () => {
    const { proxy, seen } = proxyWith(() => new Response(null, { status: 307 }));
    expect((await proxy(get(BLOB))).status).toBe(307);
    expect(seen).toHaveLength(1);
  });

  it.each(["POST", "PUT", "PATCH", "DELETE"])(
    "does not follow a redirect of a %s: the client gets it",
    async (method) => {
      const { proxy, seen } = redirecting("https://cdn.test/blob");
      const response = await proxy(get("/registry.test/v2/a/blobs/uploads/", {}, method));
      expect(response.status).toBe(307);
      expect(response.headers.get("location")).toBe("https://proxy.test/cdn.test/blob");
      expect(seen).toHaveLength(1);
    },
  );

  it("follows 10 redirects and refuses the 11th", async () => {
    const upstream = (limit: number) =>
      proxyWith((request) => {
        const hop = Number(new URL(request.url).searchParams.get("hop") ?? 0);
        return hop < limit
          ? new Response(null, { status: 302, headers: { location: `/v2/a/blobs/sha256:00?hop=${hop + 1}` } })
          : new Response(`after ${hop}`);
      });
    const ten = upstream(10);
    expect(await (await ten.proxy(get(BLOB))).text()).toBe("after 10");
    expect(ten.seen).toHaveLength(11);
    const eleven = upstream(11);
    const refused = await eleven.proxy(get(BLOB));
    expect(refused.status).toBe(403);
    expect(await reason(refused)).toBe("more than 10 redirects");
    expect(eleven.seen).toHaveLength(11);
  });

  it("keeps Authorization on a redirect within the registry's host, and cancels each redirect's body", async () => {
    const cancelled: string[] = [];
    const { proxy, seen } = proxyWith((request) => {
      const url = new URL(request.url);
      if (url.pathname.endsWith("/moved")) return new Response("blob");
      const body = new ReadableStream({ cancel: () => void cancelled.push(url.pathname) });
      return new Response(body, { status: 307, headers: { location: "/v2/a/blobs/moved" } });
    });
    const response = await proxy(get(BLOB, { authorization: "Bearer t" }));
    expect(await response.text()).toBe("blob");
    expect(seen.map((r) => r.headers.get("authorization"))).toEqual(["Bearer t", "Bearer t"]);
    expect(cancelled).toEqual(["/v2/a/blobs/sha256:00"]);
  });

  it("drops Authorization for good once a redirect left the registry's host", async () => {
    const { proxy, seen } = proxyWith((request) => {
      const url = new URL(request.url);
      if (url.host === "registry.test" && url.pathname.endsWith("/back")) return new Response("back");
      return new Response(null, {
        status: 307,
        headers: {
          location: url.host === "registry.test" ? "https://cdn.test/x" : "https://registry.test/v2/back",
        },
      });
    });
    expect(await (await proxy(get(BLOB, { authorization: "Bearer t" }))).text()).toBe("back");
    expect(seen.map((r) => r.headers.get("authorization"))).toEqual(["Bearer t", null, null]);
  });

  it("drops Authorization on a redirect to another port of the same name", async () => {
    const { proxy, seen } = redirecting("https://registry.test:8443/blob", {
      allow: ["registry.test", "registry.test:8443"],
    });
    await proxy(get(BLOB, { authorization: "Bearer t" }));
    expect(seen.map((r) => r.headers.get("authorization"))).toEqual(["Bearer t", null]);
  });
});

describe("registry proxy: bounds and name resolution", () => {
  it("refuses a redirect to a name that resolves to a private address", async () => {
    const resolve = async (name: string) => (name === "sneaky.test" ? ["fd00::1"] : ["93.184.216.34"]);
    const { proxy, seen } = proxyWith(
      () => new Response(null, { status: 307, headers: { location: "https://sneaky.test/blob" } }),
      { resolve },
    );
    const redirected = await proxy(get("/registry.test/v2/a/blobs/sha256:00"));
    expect(redirected.status).toBe(403);
    expect(seen.map((r) => new URL(r.url).host)).toEqual(["registry.test"]);
  });

  it("reaches an explicitly allowed name that resolves to a private address, but no unlisted redirect target that does", async () => {
    const resolve = async (name: string) =>
      name === "registry.corp" ? ["10.0.0.5"] : name === "blobs.corp" ? ["10.0.0.6"] : ["93.184.216.34"];
    const { proxy, seen } = proxyWith(
      (request) => {
        const url = new URL(request.url);
        if (url.host === "registry.corp") return new Response("internal ok");
        const location = url.pathname.endsWith("/listed")
          ? "https://registry.corp/blob"
          : "https://blobs.corp/blob";
        return new Response(null, { status: 307, headers: { location } });
      },
      { allow: ["registry.corp", "registry.test"], resolve },
    );
    const internal = await proxy(get("/registry.corp/v2/"));
    expect(internal.status).toBe(200);
    expect(await internal.text()).toBe("internal ok");
    const redirected = await proxy(get("/registry.test/v2/a/blobs/sha256:00"));
    expect(redirected.status).toBe(403);
    expect((await redirected.json()).errors[0].message).toMatch(
      /blobs\.corp, which resolves to a private address/,
    );
    // A redirect to the listed internal registry reaches it (a client could ask for it directly).
    expect(await (await proxy(get("/registry.test/v2/a/listed"))).text()).toBe("internal ok");
    expect(seen.map((r) => new URL(r.url).host)).toEqual([
      "registry.corp",
      "registry.test",
      "registry.test",
      "registry.corp",
    ]);
  });

  it("follows a redirect to a name that resolves to a public IPv6 address, or that does not resolve", async () => {
    const looked: string[] = [];
    const resolve = async (name: string) => {
      looked.push(name);
      if (name === "v6.test") return ["2606:4700::1111"];
      if (name === "v4.test") return ["93.184.216.34"];
      throw new Error("ENOTFOUND"); // the fetch that follows reports it
    };
    const { proxy, seen } = proxyWith(
      (request) => {
        const url = new URL(request.url);
        if (url.host !== "registry.test") return new Response(`blob from ${url.host}`);
        const location = url.pathname.endsWith("/v6")
          ? "https://v6.test:8443/blob"
          : url.pathname.endsWith("/v4")
            ? "https://v4.test/blob"
            : "https://gone.test/blob";
        return new Response(null, { status: 307, headers: { location } });
      },
      { resolve },
    );
    expect(await (await proxy(get("/registry.test/v2/a/blobs/v6"))).text()).toBe("blob from v6.test:8443");
    expect(await (await proxy(get("/registry.test/v2/a/blobs/v4"))).text()).toBe("blob from v4.test");
    expect(await (await proxy(get("/registry.test/v2/a/blobs/gone"))).text()).toBe("blob from gone.test");
    expect(looked).toEqual(["v6.test", "v4.test", "gone.test"]); // by name, without the port; never the listed registry
    expect(seen).toHaveLength(6);
  });

  it.each([
    ["cdn.test2", ["10.0.0.6"]], // a name ending in a digit is not an address
    ["9cdn.test", ["10.0.0.6"]], // nor one starting with one
    ["localhost.cdn.test", ["127.0.0.1"]], // only localhost itself and its subdomains go unresolved
    ["mixed.test", ["93.184.216.34", "10.0.0.6"]], // any private address among the answers
  ])("refuses a redirect to %s, which resolves to %j", async (name, addresses) => {
    const resolve = async (host: string) => (host === name ? addresses : ["93.184.216.34"]);
    const { proxy, seen } = proxyWith(
      () => new Response(null, { status: 307, headers: { location: `https://${name}/blob` } }),
      { resolve },
    );
    const response = await proxy(get("/registry.test/v2/a/blobs/sha256:00"));
    expect(response.status).toBe(403);
    expect(await reason(response)).toBe(
      `refusing a redirect to ${name}, which resolves to a private address`,
    );
    expect(seen).toHaveLength(1);
  });

  it("still refuses a token realm that resolves to a private address", async () => {
    const resolve = async (name: string) => (name === "auth.corp" ? ["10.0.0.7"] : ["93.184.216.34"]);
    const { proxy, seen } = proxyWith(
      () =>
        new Response("", {
          status: 401,
          headers: { "www-authenticate": 'Bearer realm="https://auth.corp/token",service="s"' },
        }),
      { resolve },
    );
    await proxy(get("/registry.test/v2/a/manifests/v1"));
    const token = await proxy(get("/auth.corp/token"));
    expect(token.status).toBe(403);
    expect((await token.json()).errors[0].message).toMatch(/resolves to a private address/);
    expect(seen).toHaveLength(1);
  });

  it("passes a body of exactly the limit, declared or not, and reports an upstream failure as such", async () => {
    const { proxy, seen } = proxyWith(
      async (request) => {
        await request.arrayBuffer();
        if (request.url.endsWith("/fail")) throw new Error("connection reset");
        return new Response(null, { status: 202 });
      },
      { maxRequestBytes: 10 },
    );
    const patch = (path: string, init: RequestInit) =>
      proxy(new Request(`${PROXY}/registry.test/v2/a/blobs/uploads/${path}`, { method: "PATCH", ...init }));
    expect((await patch("x", { body: new Uint8Array(10), headers: { "content-length": "10" } })).status).toBe(
      202,
    );
    const failed = await patch("fail", { body: chunked(10, 4), duplex: "half" } as RequestInit);
    expect(failed.status).toBe(502);
    expect(await reason(failed)).toBe("cannot reach registry.test: connection reset");
    expect(seen).toHaveLength(2);
  });

  it("refuses request bodies over the limit with 413 before any outbound request", async () => {
    const { proxy, seen } = proxyWith(() => new Response("ok"), { maxRequestBytes: 10 });
    const response = await proxy(
      new Request(`${PROXY}/registry.test/v2/a/blobs/uploads/x`, {
        method: "PATCH",
        body: new Uint8Array(11),
        headers: { "content-length": "11" },
      }),
    );
    expect(response.status).toBe(413);
    expect((await response.json()).errors[0].message).toBe(
      "oci-model-loader proxy: request bodies are limited to 10 bytes",
    );
    expect(seen).toHaveLength(0);
  });

  it("refuses a streamed request body that declares no length once it passes the limit", async () => {
    const received: (number | string)[] = [];
    const { proxy } = proxyWith(
      async (request) => {
        // Like fetch, the upload fails when its body does.
        const bytes = await request.arrayBuffer().catch((error: unknown) => {
          received.push(String(error));
          throw error;
        });
        received.push(bytes.byteLength);
        return new Response(null, { status: 202 });
      },
      { maxRequestBytes: 10 },
    );
    const upload = (bytes: number) =>
      proxy(
        new Request(`${PROXY}/registry.test/v2/a/blobs/uploads/x`, {
          method: "PATCH",
          body: chunked(bytes, 4),
          duplex: "half",
        } as RequestInit),
      );
    const over = await upload(1000);
    expect(over.status).toBe(413);
    expect((await over.json()).errors[0]).toEqual({
      code: "SIZE_INVALID",
      message: "oci-model-loader proxy: request bodies are limited to 10 bytes",
    });
    // The upstream read failed: it never got a whole body.
    expect(received).toEqual(["Error: request body over 10 bytes"]);
    const within = await upload(10);
    expect(within.status).toBe(202);
    expect(received[1]).toBe(10);
  });

  it("refuses a request body that runs past the length it declares", async () => {
    const { proxy } = proxyWith(
      async (request) => new Response(String((await request.arrayBuffer()).byteLength)),
      {
        maxRequestBytes: 10,
      },
    );
    const response = await proxy(
      new Request(`${PROXY}/registry.test/v2/a/blobs/uploads/x`, {
        method: "PATCH",
        body: new Uint8Array(1000),
        headers: { "content-length": "5" },
      }),
    );
    expect(response.status).toBe(413);
  });

  it("refuses an oversized manifest or token response", async () => {
    let pulled = 0;
    const { proxy } = proxyWith(
      () =>
        new Response(
          new ReadableStream({
            pull(controller) {
              pulled++;
              controller.enqueue(new Uint8Array(1024));
            },
          }),
          { headers: { "content-length": String(20 * 1024 * 1024) } },
        ),
      { maxMetadataBytes: 1024 },
    );
    const response = await proxy(get("/registry.test/v2/a/manifests/v1"));
    expect(response.status).toBe(502);
    expect((await response.json()).errors[0].message).toBe(
      "oci-model-loader proxy: registry.test sent a response over the 1024-byte limit for non-blob requests",
    );
    expect(pulled).toBeLessThanOrEqual(1); // refused on its declared length, not read
  });

  it("refuses a streamed manifest that declares no length once it passes the limit", async () => {
    const { proxy } = proxyWith(() => new Response(chunked(20 * 1024, 1000)), { maxMetadataBytes: 1024 });
    const over = await proxy(get("/registry.test/v2/a/manifests/v1", { origin: "https://app.test" }));
    expect(over.status).toBe(502);
    expect(over.headers.get("access-control-allow-origin")).toBe("*");
    expect((await over.json()).errors[0].message).toMatch(/over the 1024-byte limit for non-blob requests/);
    // At the limit it passes whole; blobs have no such limit.
    const { proxy: exact } = proxyWith(() => new Response(chunked(1024, 1000)), { maxMetadataBytes: 1024 });
    const manifest = await exact(get("/registry.test/v2/a/manifests/v1"));
    expect(manifest.status).toBe(200);
    expect((await manifest.arrayBuffer()).byteLength).toBe(1024);
    const { proxy: blobs } = proxyWith(() => new Response(chunked(20 * 1024, 1000)), {
      maxMetadataBytes: 1024,
    });
    const blob = await blobs(get("/registry.test/v2/a/blobs/sha256:00"));
    expect((await blob.arrayBuffer()).byteLength).toBe(20 * 1024);
  });

  it("answers a HEAD for a manifest with its headers, and refuses one that declares more than the limit", async () => {
    const { proxy } = proxyWith(
      (request) =>
        new Response(null, {
          headers: { "content-length": request.url.endsWith("/big") ? "2048" : "1024" },
        }),
      { maxMetadataBytes: 1024 },
    );
    const head = await proxy(get("/registry.test/v2/a/manifests/v1", {}, "HEAD"));
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe("1024");
    const big = await proxy(get("/registry.test/v2/a/manifests/big", {}, "HEAD"));
    expect(big.status).toBe(502);
    expect(await reason(big)).toBe(
      "registry.test sent a response over the 1024-byte limit for non-blob requests",
    );
  });

  it("answers 502 when a manifest's body fails midway", async () => {
    const { proxy } = proxyWith(
      () =>
        new Response(
          new ReadableStream({
            start(controller) {
              controller.enqueue(new Uint8Array(10));
              controller.error(new Error("connection reset"));
            },
          }),
        ),
    );
    const response = await proxy(get("/registry.test/v2/a/manifests/v1"));
    expect(response.status).toBe(502);
    expect((await response.json()).errors[0].message).toBe(
      "oci-model-loader proxy: cannot reach registry.test: connection reset",
    );
  });
});

/** A Cache API double in memory. Like the Workers cache, `put` reads the whole body before storing. */
function memoryCache() {
  const entries = new Map<string, Uint8Array>();
  const key = (request: RequestInfo | URL) =>
    typeof request === "string" ? request : request instanceof URL ? request.href : request.url;
  const cache: CacheLike = {
    async match(request) {
      const bytes = entries.get(key(request));
      return (
        bytes && new Response(bytes.slice(), { headers: { "content-length": String(bytes.byteLength) } })
      );
    },
    async put(request, response) {
      entries.set(key(request), new Uint8Array(await response.arrayBuffer()));
    },
  };
  return { cache, entries };
}

/** Collects what the handler leaves to finish after its response (the Workers `ExecutionContext`). */
function context() {
  const pending: Promise<unknown>[] = [];
  return {
    waitUntil: (promise: Promise<unknown>) => void pending.push(promise),
    done: () => Promise.all(pending),
  };
}

const sha256 = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

describe("registry proxy: blob cache", () => {
  const secret = new TextEncoder().encode("private weights, readable with the right token only");
  const digest = sha256(secret);

  /** A registry double: `team/private` holds the blob for `Bearer good`; `public/other` does not hold it. */
  function privateRegistry(request: Request): Response {
    const path = new URL(request.url).pathname;
    if (path === `/v2/public/other/blobs/${digest}`) return new Response(null, { status: 404 });
    if (path !== `/v2/team/private/blobs/${digest}`) return new Response(null, { status: 404 });
    if (request.headers.get("authorization") !== "Bearer good") {
      return new Response("", {
        status: 401,
        headers: { "www-authenticate": 'Bearer realm="https://auth.test/token",service="reg"' },
      });
    }
    const headers = { "content-length": String(secret.byteLength), "docker-content-digest": digest };
    return new Response(request.method === "HEAD" ? null : secret, { headers });
  }

  it("serves and caches a blob when the second argument has no waitUntil (what Deno.serve and Bun.serve pass)", async () => {
    const { cache, entries } = memoryCache();
    const { proxy } = proxyWith(privateRegistry, { cache });
    const info = { remoteAddr: { hostname: "127.0.0.1", port: 1, transport: "tcp" } };
    const response = await proxy(
      get(`/registry.test/v2/team/private/blobs/${digest}`, { authorization: "Bearer good" }),
      info,
    );
    expect(response.status).toBe(200);
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(secret);
    // Nothing holds the runtime for it here: the copy finishes on its own once the body was read.
    for (let i = 0; i < 100 && entries.size === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(entries.size).toBe(1);
  });

  it("never serves a blob fetched with credentials to a caller the registry would refuse", async () => {
    const { cache, entries } = memoryCache();
    const { proxy, seen } = proxyWith(privateRegistry, { cache });
    const ctx = context();
    const first = await proxy(
      get(`/registry.test/v2/team/private/blobs/${digest}`, { authorization: "Bearer good" }),
      ctx,
    );
    expect(first.status).toBe(200);
    expect(new Uint8Array(await first.arrayBuffer())).toEqual(secret);
    await ctx.done();
    expect(entries.size).toBe(1);

    for (const [path, headers, status] of [
      [`/registry.test/v2/team/private/blobs/${digest}`, {}, 401],
      [`/registry.test/v2/team/private/blobs/${digest}`, { authorization: "Bearer other" }, 401],
      [`/registry.test/v2/public/other/blobs/${digest}`, {}, 404],
    ] as const) {
      seen.length = 0;
      const response = await proxy(get(path, { ...headers, range: "bytes=0-" }));
      expect(response.status, path).toBe(status);
      expect(response.headers.get("x-oci-proxy-cache")).toBeNull();
      expect(await response.text()).not.toContain("private weights");
      // The registry itself decided, with this caller's own credentials.
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.every((r) => r.url === `https://registry.test${path.slice("/registry.test".length)}`)).toBe(
        true,
      );
      expect(seen.map((r) => r.headers.get("authorization"))).toContain(headers.authorization ?? null);
    }

    // The caller the registry admits gets the cached copy after a HEAD: no blob crosses again.
    seen.length = 0;
    const again = await proxy(
      get(`/registry.test/v2/team/private/blobs/${digest}`, {
        authorization: "Bearer good",
        range: "bytes=8-14",
      }),
    );
    expect(again.status).toBe(206);
    expect(again.headers.get("x-oci-proxy-cache")).toBe("hit");
    expect(await again.text()).toBe("weights");
    expect(seen.map((r) => r.method)).toEqual(["HEAD"]);
    expect(seen[0]?.headers.get("range")).toBeNull(); // the access check asks for the whole blob
  });

  it.each([
    ["a redirect without a Location", () => new Response(null, { status: 307 })],
    [
      "a redirect to a URL that is not http",
      () => new Response(null, { status: 307, headers: { location: "ftp://cdn.test/b" } }),
    ],
    ["a 206", () => new Response(null, { status: 206, headers: { location: "https://cdn.test/b" } })],
    [
      "a failed HEAD",
      () => {
        throw new Error("connection reset");
      },
    ],
  ])(
    "takes %s in answer to the access check as a refusal, and asks the registry for the blob",
    async (_, head) => {
      const { cache } = memoryCache();
      const { proxy, seen } = proxyWith(
        (request) => (request.method === "HEAD" ? head() : privateRegistry(request)),
        {
          cache,
        },
      );
      const ctx = context();
      const path = `/registry.test/v2/team/private/blobs/${digest}`;
      await (await proxy(get(path, { authorization: "Bearer good" }), ctx)).arrayBuffer();
      await ctx.done();
      seen.length = 0;
      const again = await proxy(get(path, { authorization: "Bearer good" }));
      expect(again.headers.get("x-oci-proxy-cache")).toBeNull();
      expect(new Uint8Array(await again.arrayBuffer())).toEqual(secret);
      expect(seen.map((r) => r.method)).toEqual(["HEAD", "GET"]);
    },
  );

  it.each([
    ["a login page on the registry", "/login?next=/v2/"],
    ["the registry's canonical https URL", "https://registry.test:443/v2/team/private/blobs/x"],
  ])("treats a redirect to %s, sent to every caller, as a refusal", async (_, location) => {
    const { cache, entries } = memoryCache();
    const { proxy, seen } = proxyWith(
      (request) => {
        const url = new URL(request.url);
        if (url.pathname.startsWith("/login") || url.pathname.endsWith("/x"))
          return new Response("please log in");
        return request.headers.get("authorization") === "Bearer good"
          ? privateRegistry(request)
          : new Response(null, { status: 302, headers: { location } });
      },
      { cache },
    );
    const ctx = context();
    await (
      await proxy(
        get(`/registry.test/v2/team/private/blobs/${digest}`, { authorization: "Bearer good" }),
        ctx,
      )
    ).arrayBuffer();
    await ctx.done();
    expect(entries.size).toBe(1);
    seen.length = 0;
    const anonymous = await proxy(get(`/registry.test/v2/team/private/blobs/${digest}`));
    expect(anonymous.headers.get("x-oci-proxy-cache")).toBeNull();
    expect(await anonymous.text()).toBe("please log in");
    expect(seen.map((r) => r.method)).toEqual(["HEAD", "GET", "GET"]);
  });

  it.each([
    ["plain.test", "https://plain.test"],
    ["plain.test:5000", "https://plain.test:5443"],
  ])(
    "treats a redirect from the plain-http registry %s to %s, sent to every caller, as a refusal",
    async (host, https) => {
      const { cache } = memoryCache();
      const { proxy } = proxyWith(
        (request) => {
          const url = new URL(request.url);
          if (url.protocol === "https:") return new Response("moved to https");
          return request.headers.get("authorization") === "Bearer good"
            ? privateRegistry(request)
            : new Response(null, { status: 301, headers: { location: `${https}${url.pathname}` } });
        },
        { cache, allow: [host], plainHttp: [host] },
      );
      const ctx = context();
      const path = `/${host}/v2/team/private/blobs/${digest}`;
      await (await proxy(get(path, { authorization: "Bearer good" }), ctx)).arrayBuffer();
      await ctx.done();
      const anonymous = await proxy(get(path));
      expect(anonymous.headers.get("x-oci-proxy-cache")).toBeNull();
      expect(await anonymous.text()).toBe("moved to https");
    },
  );

  it("takes a redirect to another host (the registry's storage) as admission", async () => {
    const { cache } = memoryCache();
    const { proxy, seen } = proxyWith(
      (request) =>
        request.method === "HEAD" && request.headers.get("authorization") === "Bearer good"
          ? new Response(null, { status: 307, headers: { location: "https://cdn.test/signed?sig=1" } })
          : privateRegistry(request),
      { cache },
    );
    const ctx = context();
    const path = `/registry.test/v2/team/private/blobs/${digest}`;
    await (await proxy(get(path, { authorization: "Bearer good" }), ctx)).arrayBuffer();
    await ctx.done();
    seen.length = 0;
    const again = await proxy(get(path, { authorization: "Bearer good" }));
    expect(again.headers.get("x-oci-proxy-cache")).toBe("hit");
    expect(new Uint8Array(await again.arrayBuffer())).toEqual(secret);
    expect(seen.map((r) => `${r.method} ${new URL(r.url).host}`)).toEqual(["HEAD registry.test"]);
    const anonymous = await proxy(get(path));
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("x-oci-proxy-cache")).toBeNull();
  });

  it.each([
    ["another host over plain http", 302, "http://cdn.test/signed?sig=1"],
    ["another port of the registry's name, same scheme", 307, "https://registry.test:8443/storage/b"],
  ])("takes a redirect to %s as admission", async (_, status, location) => {
    const { cache } = memoryCache();
    const { proxy, seen } = proxyWith(
      (request) =>
        request.method === "HEAD" && request.headers.get("authorization") === "Bearer good"
          ? new Response(null, { status, headers: { location } })
          : privateRegistry(request),
      { cache },
    );
    const ctx = context();
    const path = `/registry.test/v2/team/private/blobs/${digest}`;
    await (await proxy(get(path, { authorization: "Bearer good" }), ctx)).arrayBuffer();
    await ctx.done();
    seen.length = 0;
    const again = await proxy(get(path, { authorization: "Bearer good" }));
    expect(again.headers.get("x-oci-proxy-cache")).toBe("hit");
    expect(seen.map((r) => r.method)).toEqual(["HEAD"]);
  });

  it("caches only a whole 200 of a blob GET, and serves a hit with CORS headers", async () => {
    const { cache, entries } = memoryCache();
    const { proxy, seen } = proxyWith(
      (request) => {
        const path = new URL(request.url).pathname;
        if (request.headers.has("range")) {
          return new Response(secret.slice(0, 4), {
            status: 206,
            headers: { "content-range": "bytes 0-3/52" },
          });
        }
        if (path.includes("/manifests/")) return new Response(secret);
        if (path.includes("/missing/")) return new Response("", { status: 404 });
        return privateRegistry(request);
      },
      { cache },
    );
    const ctx = context();
    const path = `/registry.test/v2/team/private/blobs/${digest}`;
    for (const request of [
      get(path, { authorization: "Bearer good", range: "bytes=4-7" }),
      get("/registry.test/v2/team/private/manifests/v1"),
      get(`/registry.test/v2/missing/blobs/${digest}`),
      get(path, { authorization: "Bearer good" }, "HEAD"),
    ]) {
      await (await proxy(request, ctx)).arrayBuffer();
    }
    await ctx.done();
    expect(entries.size).toBe(0);
    await (await proxy(get(path, { authorization: "Bearer good" }), ctx)).arrayBuffer();
    await ctx.done();
    expect(entries.size).toBe(1);
    // A HEAD goes to the registry, not to the cache; a GET from a page gets the hit with CORS.
    seen.length = 0;
    const head = await proxy(get(path, { authorization: "Bearer good" }, "HEAD"));
    expect(head.headers.get("x-oci-proxy-cache")).toBeNull();
    expect(seen.map((r) => r.method)).toEqual(["HEAD"]);
    const hit = await proxy(get(path, { authorization: "Bearer good", origin: "https://app.test" }));
    expect(hit.headers.get("x-oci-proxy-cache")).toBe("hit");
    expect(hit.headers.get("access-control-allow-origin")).toBe("*");
    const plain = await proxy(get(path, { authorization: "Bearer good" }));
    expect(plain.headers.get("x-oci-proxy-cache")).toBe("hit");
    expect(plain.headers.get("access-control-allow-origin")).toBeNull();
  });

  /** `secret`'s bytes a `Range: bytes=a-b` asks for, as a 206; undefined without a single range. */
  function partial(request: Request): Response | undefined {
    const range = /^bytes=(\d+)-(\d*)$/.exec(request.headers.get("range") ?? "");
    if (!range) return undefined;
    const start = Number(range[1]);
    const end = Math.min(range[2] ? Number(range[2]) : secret.byteLength - 1, secret.byteLength - 1);
    return new Response(secret.slice(start, end + 1), {
      status: 206,
      headers: {
        "content-range": `bytes ${start}-${end}/${secret.byteLength}`,
        "content-length": String(end - start + 1),
      },
    });
  }

  /** `privateRegistry`, serving ranges (206) as Distribution does. */
  function rangedRegistry(request: Request): Response {
    const admitted = request.method === "GET" && request.headers.get("authorization") === "Bearer good";
    return (admitted && partial(request)) || privateRegistry(request);
  }

  it("asks for a blob's first range whole on a miss, caches it, and serves later ranges from the cache", async () => {
    const { cache, entries } = memoryCache();
    const { proxy, seen } = proxyWith(rangedRegistry, { cache });
    const ctx = context();
    const path = `/registry.test/v2/team/private/blobs/${digest}`;
    const first = await proxy(get(path, { authorization: "Bearer good", range: "bytes=0-15" }), ctx);
    // A 200 with the whole blob: what src/registry/ranges.ts takes as "no ranges here", in one stream.
    expect(first.status).toBe(200);
    expect(first.headers.get("content-length")).toBe(String(secret.byteLength));
    expect(new Uint8Array(await first.arrayBuffer())).toEqual(secret);
    expect(seen.map((r) => [r.method, r.headers.get("range")])).toEqual([["GET", null]]);
    await ctx.done();
    expect(entries.size).toBe(1);
    seen.length = 0;
    const later = await proxy(get(path, { authorization: "Bearer good", range: "bytes=16-31" }));
    expect(later.status).toBe(206);
    expect(later.headers.get("x-oci-proxy-cache")).toBe("hit");
    expect(later.headers.get("content-range")).toBe(`bytes 16-31/${secret.byteLength}`);
    expect(new Uint8Array(await later.arrayBuffer())).toEqual(secret.slice(16, 32));
    expect(seen.map((r) => r.method)).toEqual(["HEAD"]);
    // A first range that is open-ended is the whole blob too, and a hit then.
    const open = await proxy(get(path, { authorization: "Bearer good", range: "bytes=0-" }));
    expect(open.headers.get("x-oci-proxy-cache")).toBe("hit");
  });

  it("asks again as the caller asked for a first range of a blob too large to cache, with its credentials", async () => {
    const { cache, entries } = memoryCache();
    let cancelled = 0;
    const { proxy, seen } = proxyWith(
      (request) => {
        const host = new URL(request.url).host;
        // The registry hands the blob to its storage on another host, as Distribution and the CDNs do.
        if (host === "registry.test") {
          if (request.headers.get("authorization") !== "Bearer good") return privateRegistry(request);
          return new Response(null, { status: 307, headers: { location: "https://storage.test/b" } });
        }
        const ranged = partial(request);
        if (ranged) return ranged;
        const body = new ReadableStream<Uint8Array>({
          pull: (controller) => controller.enqueue(secret),
          cancel: () => void cancelled++,
        });
        return new Response(body, { headers: { "content-length": String(secret.byteLength) } });
      },
      { cache, cacheMaxBytes: secret.byteLength - 1, allow: ["registry.test", "storage.test"] },
    );
    const ctx = context();
    const path = `/registry.test/v2/team/private/blobs/${digest}`;
    const response = await proxy(get(path, { authorization: "Bearer good", range: "bytes=0-15" }), ctx);
    expect(response.status, response.status === 502 ? await reason(response.clone()) : "").toBe(206);
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(secret.slice(0, 16));
    await ctx.done();
    expect(entries.size).toBe(0);
    expect(cancelled).toBe(1);
    expect(
      seen.map((r) => [new URL(r.url).host, r.headers.get("range"), r.headers.get("authorization")]),
    ).toEqual([
      ["registry.test", null, "Bearer good"],
      ["storage.test", null, null],
      ["registry.test", "bytes=0-15", "Bearer good"],
      ["storage.test", "bytes=0-15", null],
    ]);
  });

  it("asks for a first range whole only with a cache, and only for a blob", async () => {
    const path = `/registry.test/v2/team/private/blobs/${digest}`;
    // No cache: the range goes as it came.
    const plain = proxyWith(rangedRegistry);
    const response = await plain.proxy(get(path, { authorization: "Bearer good", range: "bytes=0-15" }));
    expect(response.status).toBe(206);
    expect(plain.seen.map((r) => r.headers.get("range"))).toEqual(["bytes=0-15"]);
    // A cache, but a manifest: as it came too.
    const { cache } = memoryCache();
    const cached = proxyWith(() => new Response("{}", { status: 206 }), { cache });
    await cached.proxy(get("/registry.test/v2/team/private/manifests/v1", { range: "bytes=0-15" }));
    expect(cached.seen.map((r) => r.headers.get("range"))).toEqual(["bytes=0-15"]);
  });

  it("passes on what the registry answers a first range asked for whole, once: a refusal, an error", async () => {
    const { cache, entries } = memoryCache();
    const path = `/registry.test/v2/team/private/blobs/${digest}`;
    const denied = proxyWith(privateRegistry, { cache });
    const refused = await denied.proxy(get(path, { range: "bytes=0-15" }));
    expect(refused.status).toBe(401);
    expect(denied.seen).toHaveLength(1);
    // A redirect the proxy will not follow is its own 403, not a failure to reach the registry.
    const redirected = proxyWith(
      () => new Response(null, { status: 307, headers: { location: "https://10.0.0.1/blob" } }),
      { cache },
    );
    const answer = await redirected.proxy(get(path, { authorization: "Bearer good", range: "bytes=0-15" }));
    expect(answer.status).toBe(403);
    expect(await reason(answer)).toMatch(/private address/);
    expect(entries.size).toBe(0);
  });

  it("asks again with the range when the whole answer has no body to cache", async () => {
    const { cache } = memoryCache();
    const { proxy, seen } = proxyWith((request) => partial(request) ?? new Response(null, { status: 200 }), {
      cache,
    });
    const path = `/registry.test/v2/team/private/blobs/${digest}`;
    const response = await proxy(get(path, { authorization: "Bearer good", range: "bytes=0-15" }));
    expect(response.status).toBe(206);
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(secret.slice(0, 16));
    expect(seen.map((r) => r.headers.get("range"))).toEqual([null, "bytes=0-15"]);
  });

  it("forwards a range that does not start the blob as it is, and caches nothing of it", async () => {
    const { cache, entries } = memoryCache();
    const { proxy, seen } = proxyWith(rangedRegistry, { cache });
    const ctx = context();
    const path = `/registry.test/v2/team/private/blobs/${digest}`;
    for (const range of ["bytes=1-15", "bytes=10-", "bytes=0-3,8-9"]) {
      const response = await proxy(get(path, { authorization: "Bearer good", range }), ctx);
      await response.arrayBuffer();
    }
    await ctx.done();
    expect(entries.size).toBe(0);
    expect(seen.map((r) => r.headers.get("range"))).toEqual(["bytes=1-15", "bytes=10-", "bytes=0-3,8-9"]);
  });

  it("fetches a blob with a valid digest straight through when it has no cache", async () => {
    const { proxy } = proxyWith(() => new Response(secret));
    const response = await proxy(get(`/registry.test/v2/a/blobs/${digest}`));
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(secret);
  });

  it("keeps cached blobs apart per upstream registry", async () => {
    const { cache } = memoryCache();
    const { proxy, seen } = proxyWith(
      (request) =>
        new URL(request.url).host === "registry.test"
          ? privateRegistry(request)
          : new Response(null, { headers: { "content-length": String(secret.byteLength) } }), // says yes to any HEAD
      { cache, allow: ["registry.test", "lenient.test"] },
    );
    const ctx = context();
    await (
      await proxy(
        get(`/registry.test/v2/team/private/blobs/${digest}`, { authorization: "Bearer good" }),
        ctx,
      )
    ).arrayBuffer();
    await ctx.done();
    seen.length = 0;
    const other = await proxy(get(`/lenient.test/v2/any/blobs/${digest}`));
    expect(other.headers.get("x-oci-proxy-cache")).toBeNull();
    expect(await other.text()).toBe("");
    expect(seen.map((r) => r.method)).toEqual(["GET"]);
  });

  it("lets an idle client's pace drive the upstream read while caching", async () => {
    const size = 64 * 1024 * 1024;
    const chunkSize = 64 * 1024;
    const chunk = (i: number) => new Uint8Array(chunkSize).fill(i & 0xff);
    const hash = createHash("sha256");
    for (let i = 0; i < size / chunkSize; i++) hash.update(chunk(i));
    const blobDigest = `sha256:${hash.digest("hex")}`;
    let pulled = 0;
    const { cache, entries } = memoryCache();
    const { proxy } = proxyWith(
      () => {
        let i = 0;
        const body = new ReadableStream<Uint8Array>(
          {
            pull(controller) {
              if (i * chunkSize >= size) return controller.close();
              pulled += chunkSize;
              controller.enqueue(chunk(i++));
            },
          },
          { highWaterMark: 0 },
        );
        return new Response(body, { headers: { "content-length": String(size) } });
      },
      { cache },
    );
    const ctx = context();
    const response = await proxy(get(`/registry.test/v2/a/blobs/${blobDigest}`), ctx);
    expect(response.status).toBe(200);

    // The client reads nothing: wait until the upstream read stops moving.
    for (let last = -1, still = 0; still < 20; ) {
      await new Promise((resolve) => setTimeout(resolve, 1));
      still = pulled === last ? still + 1 : 0;
      last = pulled;
    }
    expect(pulled).toBeLessThanOrEqual(4 * 1024 * 1024);

    // Once the client reads, everything flows and the verified blob is cached.
    const received = createHash("sha256");
    for await (const part of response.body as unknown as AsyncIterable<Uint8Array>) received.update(part);
    expect(`sha256:${received.digest("hex")}`).toBe(blobDigest);
    await ctx.done();
    expect([...entries.values()].map((bytes) => bytes.byteLength)).toEqual([size]);
  });

  it("streams a blob whose digest does not match to the client in full, and caches nothing", async () => {
    const { cache, entries } = memoryCache();
    const bytes = new Uint8Array(3 * 1024 * 1024).fill(7);
    const { proxy } = proxyWith(
      () => new Response(bytes, { headers: { "content-length": String(bytes.byteLength) } }),
      {
        cache,
      },
    );
    const ctx = context();
    const response = await proxy(get(`/registry.test/v2/a/blobs/${sha256(new Uint8Array(1))}`), ctx);
    expect((await response.arrayBuffer()).byteLength).toBe(bytes.byteLength);
    await ctx.done();
    expect(entries.size).toBe(0);
  });

  it.each([
    [
      "rejects before reading the body",
      async (_: RequestInfo | URL, __: Response) => {
        throw new Error("Cannot store: quota exceeded");
      },
    ],
    ["resolves without reading the body", async (_: RequestInfo | URL, __: Response) => {}],
  ])(
    "streams a 32 MiB blob to the client in full when the cache's put %s, and caches nothing",
    async (_, put) => {
      const size = 32 * 1024 * 1024;
      const chunkSize = 64 * 1024;
      const chunk = (i: number) => new Uint8Array(chunkSize).fill(i & 0xff);
      const hash = createHash("sha256");
      for (let i = 0; i < size / chunkSize; i++) hash.update(chunk(i));
      const blobDigest = `sha256:${hash.digest("hex")}`;
      const puts: Response[] = [];
      const cache: CacheLike = {
        match: async () => undefined,
        put: (request, response) => {
          puts.push(response);
          return put(request, response);
        },
      };
      const { proxy } = proxyWith(
        () => {
          let i = 0;
          const body = new ReadableStream<Uint8Array>(
            {
              pull(controller) {
                if (i * chunkSize >= size) return controller.close();
                controller.enqueue(chunk(i++));
              },
            },
            { highWaterMark: 0 },
          );
          return new Response(body, { headers: { "content-length": String(size) } });
        },
        { cache },
      );
      const ctx = context();
      const response = await proxy(get(`/registry.test/v2/a/blobs/${blobDigest}`), ctx);
      const received = createHash("sha256");
      let length = 0;
      for await (const part of response.body as unknown as AsyncIterable<Uint8Array>) {
        received.update(part);
        length += part.byteLength;
      }
      expect(length).toBe(size);
      expect(`sha256:${received.digest("hex")}`).toBe(blobDigest);
      await ctx.done();
      expect(puts).toHaveLength(1);
      // What the cache was handed is errored, not a complete blob left to be stored later.
      await expect(puts[0]?.arrayBuffer()).rejects.toThrow();
    },
    20_000,
  );

  it("stops reading upstream and caches nothing when the client goes away", async () => {
    const { cache, entries } = memoryCache();
    let cancelled = false;
    const { proxy } = proxyWith(
      () =>
        new Response(
          new ReadableStream<Uint8Array>({
            pull: (controller) => controller.enqueue(new Uint8Array(64 * 1024)),
            cancel: () => {
              cancelled = true;
            },
          }),
          { headers: { "content-length": String(64 * 1024 * 1024) } },
        ),
      { cache },
    );
    const ctx = context();
    const response = await proxy(get(`/registry.test/v2/a/blobs/${sha256(new Uint8Array(1))}`), ctx);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    await reader.cancel();
    await ctx.done();
    expect(cancelled).toBe(true);
    expect(entries.size).toBe(0);
  });
});
