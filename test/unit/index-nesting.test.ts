// Issue 24 item 4: the limit on indexes inside indexes. A cycle of indexes cannot be built with
// content addressing (each would have to contain the other's digest), so the depth limit is what
// stops a registry that serves indexes all the way down.
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createRegistryClient, MediaType } from "../../src/index.js";
import { failure } from "../support/failure.js";

const sha = (s: string) => `sha256:${createHash("sha256").update(s).digest("hex")}`;

const MANIFEST = JSON.stringify({
  schemaVersion: 2,
  mediaType: MediaType.OciManifest,
  config: { mediaType: "application/vnd.docker.ai.model.config.v0.1+json", digest: sha("c"), size: 1 },
  layers: [],
});

const indexOf = (child: string, childType: string) =>
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: [{ mediaType: childType, digest: sha(child), size: child.length }],
  });

/**
 * A registry that serves `levels` indexes, each holding the next, around one manifest, by digest
 * (the outermost also as tag v1). Returns the client, the digests in order from the outermost
 * down, and the paths requested.
 */
function nested(levels: number) {
  const chain = [MANIFEST];
  for (let i = 0; i < levels; i++) {
    const inner = chain[0] as string;
    chain.unshift(indexOf(inner, i === 0 ? MediaType.OciManifest : MediaType.OciIndex));
  }
  const byPath = new Map(chain.map((body) => [`/v2/ns/model/manifests/${sha(body)}`, body]));
  byPath.set("/v2/ns/model/manifests/v1", chain[0] as string);
  const paths: string[] = [];
  const fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    const path = new URL(request.url).pathname;
    paths.push(path);
    const body = byPath.get(path);
    if (body === undefined) return new Response("", { status: 404 });
    const type = body === MANIFEST ? MediaType.OciManifest : MediaType.OciIndex;
    return new Response(body, { headers: { "content-type": type, "docker-content-digest": sha(body) } });
  }) as typeof globalThis.fetch;
  return { client: createRegistryClient({ fetch, retries: 0 }), digests: chain.map(sha), paths };
}

describe("indexes inside indexes", () => {
  it("resolves an index of an index of a manifest (two levels, the limit)", async () => {
    const { client, digests } = nested(2);
    const result = await client.getManifest("registry.test/ns/model:v1");
    expect(result.digest).toBe(sha(MANIFEST));
    // The index the reference named.
    expect(result.index?.digest).toBe(digests[0]);
  });

  it("refuses three levels with MANIFEST_INVALID, before fetching what the third lists", async () => {
    const { client, digests, paths } = nested(3);
    const error = await failure(client.getManifest("registry.test/ns/model:v1"));
    expect(error.code).toBe("MANIFEST_INVALID");
    expect(error.message).toBe(
      `Cannot resolve index registry.test/ns/model@${digests[1]}: indexes nest more than 2 deep`,
    );
    expect(paths).toEqual([
      "/v2/ns/model/manifests/v1",
      `/v2/ns/model/manifests/${digests[1]}`,
      `/v2/ns/model/manifests/${digests[2]}`,
    ]);
  });

  it("refuses a deep chain after three fetches, not one per level", async () => {
    const { client, paths } = nested(50);
    expect((await failure(client.getManifest("registry.test/ns/model:v1"))).code).toBe("MANIFEST_INVALID");
    expect(paths).toHaveLength(3);
  });
});
