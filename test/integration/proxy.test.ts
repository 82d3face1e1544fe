import { type ChildProcess, execFile, spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRegistryClient } from "../../src/index.js";
import { type RunningServer, serveRegistryProxy } from "../../src/node/index.js";
import { pushWithSkopeo, sameBytes, sampleModel } from "../support/layout.js";
import { isHttpUrlLine, readLine } from "../support/process.js";
import { startRegistry, type TestRegistry, USER } from "../support/registry.js";

const CLI = join(import.meta.dirname, "../../dist/node/cli.js");
const model = sampleModel({ shardSize: 300_000 });

/** A fetch that records every URL it was asked for. */
function recordingFetch() {
  const urls: URL[] = [];
  const f = ((input: RequestInfo | URL, init?: RequestInit) => {
    urls.push(new URL(input instanceof Request ? input.url : input.toString()));
    return fetch(input, init);
  }) as typeof fetch;
  return { urls, fetch: f };
}

describe("the registry proxy from Node, in front of the real registry", () => {
  let tokenRegistry: TestRegistry;
  let basicRegistry: TestRegistry;
  let proxy: RunningServer;

  beforeAll(async () => {
    [tokenRegistry, basicRegistry] = await Promise.all([
      startRegistry({ auth: "token" }),
      startRegistry({ auth: "htpasswd", redirectBlobs: true }),
    ]);
    await pushWithSkopeo(tokenRegistry, model, "private/tiny", "v1");
    await pushWithSkopeo(basicRegistry, model, "team/tiny", "v1");
    proxy = await serveRegistryProxy({ allow: [tokenRegistry.host, basicRegistry.host], port: 0 });
  });
  afterAll(async () => {
    await proxy?.close();
    await tokenRegistry?.stop();
    await basicRegistry?.stop();
  });

  it("carries the token flow and a verified blob, every request going to the proxy", async () => {
    tokenRegistry.tokenRequests.length = 0;
    const recorder = recordingFetch();
    const client = createRegistryClient({
      proxy: proxy.url,
      fetch: recorder.fetch,
      credentials: { [tokenRegistry.host]: USER },
    });
    const ref = `${tokenRegistry.host}/private/tiny:v1`;
    const { digest, manifest } = await client.getManifest(ref);
    expect(digest).toBe(model.descriptor.digest);
    const layer = manifest.layers[0];
    if (!layer) throw new Error("no layer");
    const bytes = new Uint8Array(await new Response(await client.fetchBlob(ref, layer)).arrayBuffer());
    expect(sameBytes(bytes, model.blobs.get(layer.digest) as Uint8Array)).toBe(true);
    expect(new Set(recorder.urls.map((u) => u.origin))).toEqual(new Set([proxy.url]));
    expect(
      recorder.urls.some((u) => u.pathname.startsWith(`/127.0.0.1:`) && u.pathname.endsWith("/token")),
    ).toBe(true);
    expect(tokenRegistry.tokenRequests).toEqual([
      { scopes: ["repository:private/tiny:pull"], account: USER.username, user: USER.username },
    ]);
  });

  it("follows the registry's cross-origin blob redirect itself: Range kept, Authorization dropped", async () => {
    basicRegistry.blobRequests.length = 0;
    const client = createRegistryClient({ proxy: proxy.url, credentials: { [basicRegistry.host]: USER } });
    const ref = `${basicRegistry.host}/team/tiny:v1`;
    const layer = (await client.getManifest(ref)).manifest.layers[0];
    if (!layer) throw new Error("no layer");
    const full = model.blobs.get(layer.digest) as Uint8Array;
    const prefix = new Blob([full.slice(0, 1000)]).stream();
    const rest = new Uint8Array(
      await new Response(await client.fetchBlob(ref, layer, { offset: 1000, prefix })).arrayBuffer(),
    );
    expect(sameBytes(rest, full.subarray(1000))).toBe(true);
    expect(basicRegistry.blobRequests).toHaveLength(1);
    expect(basicRegistry.blobRequests[0]?.authorization).toBeUndefined();
    expect(basicRegistry.blobRequests[0]?.range).toBe("bytes=1000-");
  });

  it("resolves names, yet reaches an allow-listed name that resolves to a private address: the operator listed it", async () => {
    // A name of ours, not this machine's (whatever that resolves to here): a single label, private
    // by its form like a machine's name, which the server's resolver says is loopback and its
    // upstream fetch takes to the registry on 127.0.0.1 (the one place the name meets the network).
    const name = "oml-test-registry";
    const port = tokenRegistry.host.split(":")[1];
    const upstream: string[] = [];
    const guarded = await serveRegistryProxy({
      allow: [`${name}:${port}`],
      plainHttp: [`${name}:${port}`],
      port: 0,
      resolve: async () => ["127.0.0.1"],
      fetch: (input, init) => {
        const url = new URL(input instanceof Request ? input.url : input.toString());
        upstream.push(url.href);
        if (url.hostname === name) url.hostname = "127.0.0.1";
        return fetch(input instanceof Request ? new Request(url, input) : url, init);
      },
    });
    try {
      const response = await fetch(`${guarded.url}/${name}:${port}/v2/`);
      expect(await response.text()).not.toMatch(/resolves to a private address/);
      // The registry itself answers (plain http, as listed): its challenge, realm rewritten to the proxy.
      expect(response.status).toBe(401);
      expect(response.headers.get("www-authenticate")).toContain(`realm="${guarded.url}/127.0.0.1:`);
      expect(upstream).toEqual([`http://${name}:${port}/v2/`]);
    } finally {
      await guarded.close();
    }
  });

  it("refuses what is not on its allow-list", async () => {
    const response = await fetch(`${proxy.url}/127.0.0.1:9/v2/`);
    expect(response.status).toBe(403);
    const metadata = await fetch(`${proxy.url}/169.254.169.254/latest/meta-data/`);
    expect(metadata.status).toBe(403);
  });
});

describe("oci-model proxy and inspect --proxy", () => {
  let registry: TestRegistry;
  let child: ChildProcess;
  let url: string;

  beforeAll(async () => {
    registry = await startRegistry({ auth: "token" });
    await pushWithSkopeo(registry, model, "public/tiny", "v1");
    child = spawn(process.execPath, [
      CLI,
      "proxy",
      "--allow",
      registry.host,
      "--port",
      "0",
      "--origin",
      "https://app.test",
    ]);
    url = await readLine(child, isHttpUrlLine);
  });
  afterAll(async () => {
    child?.kill("SIGTERM");
    await registry?.stop();
  });

  it("answers preflight and exposes headers for its origin only", async () => {
    const pre = await fetch(`${url}/${registry.host}/v2/`, {
      method: "OPTIONS",
      headers: {
        origin: "https://app.test",
        "access-control-request-method": "GET",
        "access-control-request-headers": "authorization",
      },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe("https://app.test");
    expect(pre.headers.get("access-control-allow-headers")).toContain("authorization");
    const other = await fetch(`${url}/${registry.host}/v2/`, { headers: { origin: "https://evil.test" } });
    expect(other.status).toBe(403);
    const challenge = await fetch(`${url}/${registry.host}/v2/`, { headers: { origin: "https://app.test" } });
    expect(challenge.status).toBe(401);
    expect(challenge.headers.get("access-control-expose-headers")).toContain("www-authenticate");
    expect(challenge.headers.get("www-authenticate")).toContain(`realm="${url}/127.0.0.1:`);
  });

  it("serves oci-model inspect --proxy", async () => {
    const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [CLI, "inspect", "--json", "--proxy", url, `${registry.host}/public/tiny:v1`],
        (error, stdout, stderr) => resolve({ code: error ? 1 : 0, stdout, stderr }),
      );
    });
    expect(result.stderr).toBe("");
    expect(JSON.parse(result.stdout).digest).toBe(model.descriptor.digest);
  });
});
