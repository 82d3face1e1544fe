import { createHash, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  type CreateHasher,
  createDefaultHasher,
  createJsHasher,
  createWasmHasher,
  type OciError,
} from "../../src/index.js";
import { createVerifyStream } from "../../src/internals.js";
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

  it("names the digest and size when content runs past the declared size", async () => {
    const result = await drain(
      streamOf(data).pipeThrough(createVerifyStream({ digest: sha256, size: 10_000 })),
    );
    expect(result.error?.message).toBe(
      `Cannot verify ${sha256}: received more than the declared 10000 bytes`,
    );
  });

  it("holds the last chunk back until the digest matched: wrong content is never delivered whole", async () => {
    const altered = Buffer.from(data);
    altered[0] = (altered[0] ?? 0) ^ 1;
    // Three chunks of 100 000: the first two go through, the last is held back and dropped.
    const result = await drain(
      streamOf(altered, 100_000).pipeThrough(createVerifyStream({ digest: sha256, size: data.length })),
    );
    expect(result.bytes).toBe(200_000);
    expect(result.error?.code).toBe("DIGEST_MISMATCH");
    const actual = `sha256:${createHash("sha256").update(altered).digest("hex")}`;
    expect(result.error?.message).toBe(
      `Cannot verify ${sha256}: the content hashes to ${actual}; it was corrupted or altered`,
    );
    // One chunk, wrong: nothing at all comes out.
    const one = await drain(
      streamOf(altered, data.length).pipeThrough(createVerifyStream({ digest: sha256, size: data.length })),
    );
    expect(one).toMatchObject({ bytes: 0, error: { code: "DIGEST_MISMATCH" } });
  });

  it("passes empty content through as no chunks at all", async () => {
    const empty = `sha256:${createHash("sha256").update(new Uint8Array()).digest("hex")}`;
    const chunks: Uint8Array[] = [];
    for await (const chunk of streamOf(new Uint8Array()).pipeThrough(
      createVerifyStream({ digest: empty, size: 0 }),
    ))
      chunks.push(chunk);
    expect(chunks).toEqual([]);
  });

  it("reports the bytes seen so far after each chunk", async () => {
    const seen: number[] = [];
    await drain(
      streamOf(data, 100_000).pipeThrough(
        createVerifyStream({ digest: sha256, size: data.length }, { onBytes: (n) => seen.push(n) }),
      ),
    );
    expect(seen).toEqual([100_000, 200_000, 300_000]);
  });

  it("uses the hasher it is given", async () => {
    const algorithms: string[] = [];
    const createHasher: CreateHasher = async (algorithm) => {
      algorithms.push(algorithm);
      return createJsHasher(algorithm);
    };
    const result = await drain(
      streamOf(data).pipeThrough(createVerifyStream({ digest: sha512, size: data.length }, { createHasher })),
    );
    expect(result).toEqual({ bytes: data.length });
    expect(algorithms).toEqual(["sha512"]);
  });

  it("refuses a resumed stream without the hasher of the first bytes", () => {
    expect(() => createVerifyStream({ digest: sha256, size: data.length }, { offset: 5000 })).toThrow(
      expect.objectContaining({
        code: "INVALID_ARGUMENT",
        message: "Cannot verify a resumed stream: pass the hasher of the first bytes",
      }),
    );
    // Offset 0 is no resume: no hasher needed.
    expect(() => createVerifyStream({ digest: sha256, size: data.length }, { offset: 0 })).not.toThrow();
  });

  it("refuses an unsupported digest up front", () => {
    expect(() => createVerifyStream({ digest: `md5:${"0".repeat(32)}`, size: 1 })).toThrow(
      /only sha256 and sha512/,
    );
  });
});
