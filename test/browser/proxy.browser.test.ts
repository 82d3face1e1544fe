import { describe, expect, inject, it } from "vitest";
import { createRegistryClient, type OciError } from "../../src/index.js";

const bed = inject("bed");
const ref = `${bed.registryHost}/${bed.repository}:v1`;
const credentials = { [bed.registryHost]: bed.user };
const registryOrigin = `http://${bed.registryHost}`;
const direct = `${registryOrigin}/v2/`;
const proxied = `${bed.proxyUrl}/${bed.registryHost}/v2/`;

async function sha256(bytes: ArrayBuffer): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return `sha256:${Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

describe("in Chromium, a page on another origin than the registry", () => {
  it("is cross-origin to the registry and to the proxy, as the browser counts origins", () => {
    expect(new URL(registryOrigin).origin).toBe(registryOrigin);
    expect(location.origin).not.toBe(registryOrigin);
    expect(location.origin).not.toBe(new URL(bed.proxyUrl).origin);
  });

  it("can reach the registry, but CORS forbids reading it directly; the proxy makes the same request readable", async () => {
    // Reachable: an opaque (no-cors) request gets an answer, so a failure below is CORS, not the network.
    const opaque = await fetch(direct, { mode: "no-cors", cache: "no-store" });
    expect(opaque.type).toBe("opaque");
    // The same GET in cors mode: the registry sends no Access-Control-Allow-Origin, the browser refuses.
    const refused = await fetch(direct, { cache: "no-store" }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(TypeError);
    expect((refused as TypeError).message).toMatch(/Failed to fetch/);
    // Through the proxy the page reads the registry's answer: its status and its (exposed) challenge.
    const through = await fetch(proxied, { cache: "no-store" });
    expect(through.type).toBe("cors");
    expect(through.status).toBe(401);
    expect(through.headers.get("www-authenticate")).toContain(`realm="${bed.proxyUrl}/`);
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

  it("the same client without the proxy fails with NETWORK (the browser's CORS refusal)", async () => {
    // The registry is up (the opaque request above got an answer), so this is the CORS refusal.
    const opaque = await fetch(direct, { mode: "no-cors", cache: "no-store" });
    expect(opaque.type).toBe("opaque");
    const client = createRegistryClient({ credentials, retries: 0 });
    const error = (await client.getManifest(ref).catch((e: unknown) => e)) as OciError;
    expect(error.code).toBe("NETWORK");
    expect(error.message).toMatch(/Failed to fetch/);
  });
});
