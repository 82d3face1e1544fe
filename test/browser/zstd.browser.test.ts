// tar+zstd layers in Chromium: extracted with the decoder the browser gets (its own
// DecompressionStream("zstd") where it has one) and, once, with the fallback (fzstd) forced. The
// fixtures are written by the zstd CLI (scripts/zstd-fixtures.sh).
import { describe, expect, it } from "vitest";
import { commands } from "vitest/browser";
import { walkTar } from "../../src/archive/tar.js";
import { decompressZstd, nativeZstdDecoder } from "../../src/archive/zstd.js";
import { createMemoryStore, OciError, pullModel } from "../../src/index.js";
import { sha256 } from "../support/blobs.js";

interface Expected {
  tarSize: number;
  files: Record<string, { size: number; sha256: string }>;
}

async function fixture(name: string): Promise<Uint8Array<ArrayBuffer>> {
  const text = atob(await commands.readFile(`test/fixtures/zstd/${name}`, "base64"));
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}
const expected = async () =>
  JSON.parse(await commands.readFile("test/fixtures/zstd/expected.json")) as Expected;

async function extract(source: ReadableStream<Uint8Array>, compression?: "zstd") {
  const files: Expected["files"] = {};
  await walkTar(source, {
    what: "layer",
    compression,
    onFile: async (file, body) => {
      const bytes = new Uint8Array(await new Response(body).arrayBuffer());
      files[file.path] = { size: bytes.length, sha256: (await sha256(bytes)).slice("sha256:".length) };
    },
  });
  return files;
}
/** Reads a stream whole; the error it fails with (Response.arrayBuffer would give "Failed to fetch"). */
async function readAll(source: ReadableStream<Uint8Array>): Promise<Uint8Array<ArrayBuffer>> {
  const parts: Uint8Array<ArrayBuffer>[] = [];
  const reader = source.getReader();
  for (;;) {
    const next = await reader.read();
    if (next.done) return new Uint8Array(await new Blob(parts).arrayBuffer());
    parts.push(next.value as Uint8Array<ArrayBuffer>);
  }
}
const stream = (bytes: Uint8Array<ArrayBuffer>) => new Blob([bytes]).stream();
const refuse = (reason: string) => new OciError("UNSAFE_ARCHIVE", reason);

describe("tar+zstd in Chromium", () => {
  it("reports which decoder Chromium uses", () => {
    // Chromium has decoded zstd in DecompressionStream since version 140 or so; either way works.
    // Chromium 156 (Debian's) has none: fzstd decodes.
    console.info(`Chromium ${nativeZstdDecoder() ? "has" : "lacks"} DecompressionStream("zstd")`);
    expect(typeof decompressZstd(stream(new Uint8Array(0)), refuse).getReader).toBe("function");
  });

  it("extracts a one-frame and a multi-frame tar+zstd equal to what was packed", async () => {
    const { files } = await expected();
    for (const name of ["model.tar.zst", "model.multi.tar.zst"])
      expect(await extract(stream(await fixture(name)), "zstd"), name).toEqual(files);
  });

  it("extracts with fzstd forced, and with the browser's own decoder where it has one", async () => {
    const { files, tarSize } = await expected();
    for (const name of ["model.tar.zst", "model.multi.tar.zst"]) {
      const bytes = await fixture(name);
      const fallback = decompressZstd(stream(bytes), refuse, false);
      const tar = await readAll(fallback);
      expect(tar.length).toBe(tarSize);
      expect(await extract(stream(tar))).toEqual(files);
      if (nativeZstdDecoder()) {
        expect(await readAll(decompressZstd(stream(bytes), refuse))).toEqual(tar);
      }
    }
  });

  it("refuses a frame asking for a window over 128 MiB, whichever decoder", async () => {
    // Frame header: no single segment, Window_Descriptor 0xa8 (2 GiB), then an empty last raw block.
    const huge = new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xa8, 1, 0, 0]);
    for (const native of [true, false]) {
      const error = await readAll(decompressZstd(stream(huge), refuse, native)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(OciError);
      expect((error as OciError).message).toBe(
        "a zstd frame asks for a window of 2147483648 bytes, more than the 134217728 allowed",
      );
    }
  });

  it("pulls a ModelPack tar+zstd layer from a registry into a memory store", async () => {
    const bytes = await fixture("model.tar.zst");
    const { files } = await expected();
    const layer = { mediaType: "application/vnd.cncf.model.weight.v1.tar+zstd", bytes };
    const config = {
      mediaType: "application/vnd.cncf.model.config.v1+json",
      bytes: new TextEncoder().encode("{}"),
    };
    const descriptor = async (b: { mediaType: string; bytes: Uint8Array<ArrayBuffer> }) => ({
      mediaType: b.mediaType,
      digest: await sha256(b.bytes),
      size: b.bytes.length,
    });
    const manifest = new TextEncoder().encode(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        artifactType: "application/vnd.cncf.model.manifest.v1+json",
        config: await descriptor(config),
        layers: [await descriptor(layer)],
      }),
    );
    const blobs = new Map<string, Uint8Array<ArrayBuffer>>();
    for (const b of [layer, config]) blobs.set((await descriptor(b)).digest, b.bytes);
    const fetch = (async (input: RequestInfo | URL) => {
      const path = new URL(new Request(input).url).pathname;
      if (path.endsWith("/manifests/v1"))
        return new Response(manifest, {
          headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
        });
      const blob = blobs.get(path.split("/").pop() ?? "");
      return blob ? new Response(blob) : new Response(null, { status: 404 });
    }) as typeof globalThis.fetch;
    const model = await pullModel("registry.test/models/zstd:v1", { fetch, store: createMemoryStore() });
    const pulled: Expected["files"] = {};
    for (const path of model.files.keys()) {
      const b = new Uint8Array(await model.file(path).arrayBuffer());
      pulled[path] = { size: b.length, sha256: (await sha256(b)).slice("sha256:".length) };
    }
    expect(pulled).toEqual(files);
  });
});
