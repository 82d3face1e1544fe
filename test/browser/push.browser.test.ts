import { expect, it } from "vitest";
import { createRegistryClient } from "../../src/index.js";
import { blobOf } from "../support/blobs.js";

// Browsers stream request bodies only over HTTP/2, so a stream goes PATCH by PATCH from one buffer,
// the last piece in the PUT that ends the upload.
it("uploads a stream in Content-Range pieces that put together are the blob", async () => {
  const { bytes, descriptor } = await blobOf(2 * 1024 * 1024 + 100);
  const patches: { method: string; range: string | null; body: Uint8Array }[] = [];
  let uploaded: Uint8Array | undefined;
  const fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    if (request.method === "HEAD") return new Response(null, { status: 404 });
    if (request.method === "POST")
      return new Response(null, { status: 202, headers: { location: "/v2/m/blobs/uploads/1" } });
    if (request.method === "PATCH") {
      patches.push({
        method: request.method,
        range: request.headers.get("content-range"),
        body: new Uint8Array(await request.arrayBuffer()),
      });
      return new Response(null, {
        status: 202,
        headers: { location: `/v2/m/blobs/uploads/1?n=${patches.length}` },
      });
    }
    if (request.method === "PUT" && url.searchParams.get("digest") === descriptor.digest) {
      patches.push({
        method: request.method,
        range: request.headers.get("content-range"),
        body: new Uint8Array(await request.arrayBuffer()),
      });
      uploaded = new Uint8Array(
        await new Blob(patches.map((p) => p.body as Uint8Array<ArrayBuffer>)).arrayBuffer(),
      );
      return new Response(null, { status: 201 });
    }
    return new Response(null, { status: 400 });
  }) as typeof globalThis.fetch;
  const client = createRegistryClient({ fetch });
  const sent = await client.pushBlob(
    "registry.test/m",
    descriptor,
    new Blob([bytes as Uint8Array<ArrayBuffer>]).stream(),
    {
      chunkSize: 1024 * 1024,
    },
  );
  expect(sent).toBe(true);
  expect(patches.map((p) => `${p.method} ${p.range}`)).toEqual([
    "PATCH 0-1048575",
    "PATCH 1048576-2097151",
    "PUT 2097152-2097251",
  ]);
  expect(uploaded?.every((b, i) => b === bytes[i]) && uploaded.byteLength === bytes.byteLength).toBe(true);
});

it("asks past the HTTP cache in browsers (the store keeps the verified copy; the cache would hold a second)", async () => {
  const { bytes, descriptor } = await blobOf(1000);
  const modes: RequestCache[] = [];
  const fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    modes.push(new Request(input, init).cache);
    return new Response(bytes as Uint8Array<ArrayBuffer>);
  }) as typeof globalThis.fetch;
  const client = createRegistryClient({ fetch });
  await new Response(await client.fetchBlob("registry.test/m", descriptor)).arrayBuffer();
  expect(modes).toEqual(["no-store"]);
});
