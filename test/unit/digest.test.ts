import { createHash, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  type CreateHasher,
  createDefaultHasher,
  createJsHasher,
  createVerifyStream,
  createWasmHasher,
  type OciError,
} from "../../src/index.js";
import { createNodeHasher } from "../../src/node/index.js";

const data = randomBytes(300_000);
const sha256 = `sha256:${createHash("sha256").update(data).digest("hex")}`;
const sha512 = `sha512:${createHash("sha512").update(data).digest("hex")}`;

function streamOf(bytes: Uint8Array, chunk = 7_919): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.byteLength) return controller.close();
      controller.enqueue(bytes.subarray(at, at + chunk));
      at += chunk;
    },
  });
}

async function drain(stream: ReadableStream<Uint8Array>): Promise<{ bytes: number; error?: OciError }> {
  let bytes = 0;
  try {
    for await (const chunk of stream) bytes += chunk.byteLength;
    return { bytes };
  } catch (error) {
    return { bytes, error: error as OciError };
  }
}

const hashers: [string, CreateHasher][] = [
  ["hash-wasm", createWasmHasher],
  ["@noble/hashes", createJsHasher],
  ["node:crypto", createNodeHasher],
  ["default", createDefaultHasher],
];

describe.each(hashers)("hasher %s", (_, createHasher) => {
  it("computes sha256 and sha512 incrementally", async () => {
    for (const [algorithm, expected] of [
      ["sha256", sha256],
      ["sha512", sha512],
    ] as const) {
      const hasher = await createHasher(algorithm);
      for (let i = 0; i < data.length; i += 10_007) await hasher.update(data.subarray(i, i + 10_007));
      expect(`${algorithm}:${await hasher.digest()}`).toBe(expected);
    }
  });

  it("passes verified content through unchanged", async () => {
    const out = await new Response(
      streamOf(data).pipeThrough(createVerifyStream({ digest: sha256, size: data.length }, { createHasher })),
    ).arrayBuffer();
    expect(Buffer.from(out).equals(data)).toBe(true);
  });
});

describe("createVerifyStream", () => {
  it("fails with SIZE_MISMATCH as soon as content runs past the declared size", async () => {
    const result = await drain(
      streamOf(data).pipeThrough(createVerifyStream({ digest: sha256, size: 10_000 })),
    );
    expect(result.error?.code).toBe("SIZE_MISMATCH");
    expect(result.bytes).toBeLessThanOrEqual(10_000);
  });

  it("fails with SIZE_MISMATCH when content ends short", async () => {
    const result = await drain(
      streamOf(data.subarray(0, 1000)).pipeThrough(createVerifyStream({ digest: sha256, size: data.length })),
    );
    expect(result.error?.code).toBe("SIZE_MISMATCH");
    expect(result.error?.message).toMatch(/ended after 1000 of 300000/);
  });

  it("fails with DIGEST_MISMATCH when one byte differs", async () => {
    const altered = Buffer.from(data);
    altered[123_456] = (altered[123_456] ?? 0) ^ 1;
    const result = await drain(
      streamOf(altered).pipeThrough(createVerifyStream({ digest: sha256, size: data.length })),
    );
    expect(result.error?.code).toBe("DIGEST_MISMATCH");
  });

  it("continues from a saved hasher state at an offset", async () => {
    const first = await createWasmHasher("sha256");
    await first.update(data.subarray(0, 5000));
    const hasher = await createWasmHasher("sha256");
    hasher.load?.(first.save?.() as Uint8Array);
    const seen: number[] = [];
    const verify = createVerifyStream(
      { digest: sha256, size: data.length },
      { offset: 5000, hasher, onBytes: (n) => seen.push(n) },
    );
    const result = await drain(streamOf(data.subarray(5000)).pipeThrough(verify));
    expect(result).toEqual({ bytes: data.length - 5000 });
    expect(seen.at(-1)).toBe(data.length);
  });

  it("refuses an unsupported digest up front", () => {
    expect(() => createVerifyStream({ digest: `md5:${"0".repeat(32)}`, size: 1 })).toThrow(
      /only sha256 and sha512/,
    );
  });
});
