import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRegistryClient, type ImageManifest, type OciError } from "../../src/index.js";
import { pushWithSkopeo, sameBytes, sampleModel } from "../support/layout.js";
import { startRegistry, type TestRegistry, USER } from "../support/registry.js";

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const model = sampleModel({ shardSize: 256 * 1024 });
const layers = (JSON.parse(new TextDecoder().decode(model.bytes)) as ImageManifest).layers;

describe("token auth (RS256 JWT with x5c, Distribution's rootcertbundle)", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ auth: "token" });
    await pushWithSkopeo(registry, model, "public/tiny", "v1");
    await pushWithSkopeo(registry, model, "private/tiny", "v1");
  });
  afterAll(() => registry?.stop());

  it("pulls anonymously with exactly one token request for the repository and scope", async () => {
    registry.tokenRequests.length = 0;
    const client = createRegistryClient();
    const ref = `${registry.host}/public/tiny:v1`;
    const { manifest } = await client.getManifest(ref);
    const blobs = await Promise.all(
      manifest.layers.map(async (l) => collect(await client.fetchBlob(ref, l))),
    );
    for (const [i, b] of blobs.entries()) {
      expect(sameBytes(b, model.blobs.get(layers[i]?.digest ?? "") as Uint8Array)).toBe(true);
    }
    await collect(await client.fetchBlob(ref, layers[0] as ImageManifest["layers"][0]));
    expect(registry.tokenRequests).toEqual([
      { scopes: ["repository:public/tiny:pull"], account: null, user: null },
    ]);
  });

  it("merges concurrent first requests onto one token request", async () => {
    registry.tokenRequests.length = 0;
    const client = createRegistryClient();
    const ref = `${registry.host}/public/tiny:v1`;
    await Promise.all(layers.map(async (l) => collect(await client.fetchBlob(ref, l))));
    expect(registry.tokenRequests).toHaveLength(1);
  });

  it("sends Basic credentials to the realm and pulls a private repository", async () => {
    registry.tokenRequests.length = 0;
    const client = createRegistryClient({ credentials: { [registry.host]: USER } });
    const result = await client.getManifest(`${registry.host}/private/tiny:v1`);
    expect(result.digest).toBe(model.descriptor.digest);
    expect(registry.tokenRequests).toEqual([
      { scopes: ["repository:private/tiny:pull"], account: USER.username, user: USER.username },
    ]);
  });

  it("refuses anonymous access to a private repository with UNAUTHORIZED", async () => {
    const error = (await createRegistryClient()
      .getManifest(`${registry.host}/private/tiny:v1`)
      .catch((e: unknown) => e)) as OciError;
    expect(error.code).toBe("UNAUTHORIZED");
  });

  it("reports wrong credentials as UNAUTHORIZED", async () => {
    const client = createRegistryClient({
      credentials: { [registry.host]: { username: USER.username, password: "wrong" } },
    });
    const error = (await client
      .getManifest(`${registry.host}/private/tiny:v1`)
      .catch((e: unknown) => e)) as OciError;
    expect(error.code).toBe("UNAUTHORIZED");
    expect(error.message).toMatch(/refused the credentials/);
  });

  it("pushes a blob and a manifest with a pull,push token", async () => {
    registry.tokenRequests.length = 0;
    const client = createRegistryClient({ credentials: async () => USER });
    const ref = `${registry.host}/private/pushed:v1`;
    for (const [digest, bytes] of model.blobs) {
      expect(await client.pushBlob(ref, { digest, size: bytes.byteLength }, bytes)).toBe(true);
    }
    const digest = await client.putManifest(ref, model.bytes, model.descriptor.mediaType);
    expect(digest).toBe(model.descriptor.digest);
    expect(registry.tokenRequests).toHaveLength(1);
    expect(registry.tokenRequests[0]?.scopes).toContain("repository:private/pushed:pull,push");
    const again = await client.pushBlob(ref, layers[0] as ImageManifest["layers"][0], new Uint8Array(0));
    expect(again).toBe(false);
  });

  it("renews an expired token and keeps going", async () => {
    let clock = Date.now();
    registry.tokenRequests.length = 0;
    const client = createRegistryClient({ now: () => clock });
    const ref = `${registry.host}/public/tiny:v1`;
    await client.getManifest(ref);
    clock += 3600_000; // the cached token is now past its expiry
    await client.getManifest(ref);
    expect(registry.tokenRequests).toHaveLength(2);
  });
});

describe("htpasswd (Basic) auth", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ auth: "htpasswd", redirectBlobs: true });
    await pushWithSkopeo(registry, model, "team/tiny", "v1");
  });
  afterAll(() => registry?.stop());

  it("pulls with Basic credentials, never sending them across the cross-origin blob redirect", async () => {
    registry.blobRequests.length = 0;
    const client = createRegistryClient({ credentials: { [registry.host]: USER } });
    const ref = `${registry.host}/team/tiny:v1`;
    const { manifest } = await client.getManifest(ref);
    const layer = manifest.layers[0] as ImageManifest["layers"][0];
    const bytes = await collect(await client.fetchBlob(ref, layer));
    expect(sameBytes(bytes, model.blobs.get(layer.digest) as Uint8Array)).toBe(true);
    expect(registry.blobRequests.length).toBeGreaterThan(0);
    for (const headers of registry.blobRequests) expect(headers.authorization).toBeUndefined();
  });

  it("reports missing and wrong credentials as UNAUTHORIZED", async () => {
    const ref = `${registry.host}/team/tiny:v1`;
    const anonymous = (await createRegistryClient()
      .getManifest(ref)
      .catch((e: unknown) => e)) as OciError;
    expect(anonymous.code).toBe("UNAUTHORIZED");
    expect(anonymous.status).toBe(401);
    const wrong = createRegistryClient({
      credentials: { [registry.host]: { username: USER.username, password: "x" } },
    });
    expect(((await wrong.getManifest(ref).catch((e: unknown) => e)) as OciError).code).toBe("UNAUTHORIZED");
  });
});
