// tar+zstd inside workerd: a ModelPack tar+zstd model pushed with skopeo to the real registry and
// pulled into a Cache API store, and zstd streams decoded by workerd's decoder (where it has one) and
// by fzstd, which the worker bundle carries (esbuild inlines its dynamic import).
import { createHash } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pushWithSkopeo } from "../support/layout.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";
import { startWorker } from "../support/workerd.js";
import { modelPackTarZstd, zstdCli } from "../support/zstd-models.js";

const hex = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

describe("tar+zstd inside workerd", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ redirectBlobs: true });
  });
  afterAll(() => registry?.stop());

  it("pulls a ModelPack tar+zstd model from the real registry; its files equal the originals", async () => {
    const fixture = await modelPackTarZstd();
    await pushWithSkopeo(registry, fixture.artifact, "models/zstd", "v1");
    const mf = await startWorker(join(import.meta.dirname, "zstd-worker.ts"), { cache: true });
    try {
      const url = `http://worker/?ref=${encodeURIComponent(`${registry.host}/models/zstd:v1`)}`;
      const report = (await (await mf.dispatchFetch(url)).json()) as Record<string, unknown>;
      expect(report.code, String(report.message)).toBeUndefined();
      console.info(`workerd ${report.nativeZstd ? "has" : "lacks"} DecompressionStream("zstd")`);
      expect(report.format).toBe("modelpack");
      expect(report.files).toEqual(
        Object.fromEntries(
          Object.entries(fixture.files).map(([p, b]) => [p, { size: b.byteLength, sha256: hex(b) }]),
        ),
      );
      expect(report.weights).toEqual(fixture.weights);
    } finally {
      await mf.dispose();
    }
  });

  it("decodes with workerd's decoder and with fzstd alike, and refuses a 2 GiB window with both", async () => {
    const plain = new TextEncoder().encode("tensor bytes ".repeat(50_000));
    const compressed = zstdCli(plain, "-19");
    const huge = new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xa8, 1, 0, 0]);
    const mf = await startWorker(join(import.meta.dirname, "zstd-worker.ts"));
    try {
      for (const native of ["1", "0"]) {
        const post = async (body: Uint8Array) =>
          (await (
            await mf.dispatchFetch(`http://worker/?native=${native}`, { method: "POST", body })
          ).json()) as Record<string, unknown>;
        expect(await post(compressed), `native=${native}`).toMatchObject({
          size: plain.length,
          sha256: hex(plain),
        });
        expect(await post(huge)).toMatchObject({
          code: "UNSAFE_ARCHIVE",
          message: "a zstd frame asks for a window of 2147483648 bytes, more than the 134217728 allowed",
        });
      }
    } finally {
      await mf.dispose();
    }
  });
});
