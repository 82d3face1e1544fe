import { describe, expect, inject, it } from "vitest";
import { createRegistryClient, type OciError } from "../../src/index.js";

const bed = inject("bed");
const ref = `${bed.registryHost}/${bed.repository}:v1`;
const credentials = { [bed.registryHost]: bed.user };

async function sha256(bytes: ArrayBuffer): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return `sha256:${Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

describe("in Chromium, a page on another origin than the registry", () => {
  it("runs on its own origin, not the registry's", () => {
    expect(location.origin).not.toContain(bed.registryHost);
  });

  it("pulls a manifest and a verified blob through the proxy, with token auth and page-supplied credentials", async () => {
    const client = createRegistryClient({ proxy: bed.proxyUrl, credentials });
    const { digest, manifest } = await client.getManifest(ref);
    expect(digest).toBe(bed.manifestDigest);
    const layer = manifest.layers[0];
    if (!layer) throw new Error("no layer");
    const bytes = await new Response(await client.fetchBlob(ref, layer)).arrayBuffer();
    expect(bytes.byteLength).toBe(layer.size);
    expect(await sha256(bytes)).toBe(layer.digest);
  });

  it("fails with a CORS error without the proxy", async () => {
    const client = createRegistryClient({ credentials, retries: 0 });
    const error = (await client.getManifest(ref).catch((e: unknown) => e)) as OciError;
    expect(error.code).toBe("NETWORK");
    expect(error.message).toMatch(/Failed to fetch/);
  });
});
