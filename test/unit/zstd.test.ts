// zstd tar layers in Node (which has no DecompressionStream("zstd"): fzstd decodes), compressed by the
// real zstd CLI (Debian's zstd, installed by scripts/setup.sh) at run time.
import { execFileSync } from "node:child_process";
import { packTar, type TarEntry } from "modern-tar";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type WalkTarOptions, walkTar } from "../../src/archive/tar.js";
import {
  decompressZstd,
  nativeZstdDecoder,
  ZSTD_MAX_WINDOW,
  zstdDecoder,
  zstdFrames,
  zstdWindowSize,
} from "../../src/archive/zstd.js";
import { OciError } from "../../src/index.js";
import { equal } from "../support/blobs.js";
import { failure } from "../support/failure.js";

const zstd = (input: Uint8Array, ...args: string[]): Uint8Array =>
  new Uint8Array(execFileSync("zstd", ["-q", "-c", ...args], { input, maxBuffer: 1 << 30 }));

/** A stream of `bytes` in chunks of `size` bytes. */
function chunked(bytes: Uint8Array, size = 65_536): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(at, at + size));
      at += size;
    },
  });
}

const gzip = (source: ReadableStream<Uint8Array>) =>
  source.pipeThrough(new CompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>);

/** Bytes of a deterministic, half-compressible file. */
function content(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = i % 7 === 0 ? x >>> 24 : 97 + (i % 13);
  }
  return out;
}

/** A tar's entries, with a fixed mtime so that the archive and its compressed bytes never change. */
const entries = (): TarEntry[] =>
  tarEntries().map((e) => ({ ...e, header: { ...e.header, mtime: new Date(0) } }));
const tarEntries = (): TarEntry[] => [
  { header: { name: "model/", size: 0, type: "directory" } },
  { header: { name: "model/config.json", size: 9, type: "file" }, body: '{"a": 1}\n' },
  { header: { name: "model/weights.bin", size: 700_000, type: "file" }, body: content(700_000, 1) },
  { header: { name: "model/empty", size: 0, type: "file" }, body: "" },
  { header: { name: "tokenizer.json", size: 50_000, type: "file" }, body: content(50_000, 2) },
];

async function extract(
  source: ReadableStream<Uint8Array>,
  options: Partial<WalkTarOptions> = {},
): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  await walkTar(source, {
    what: "layer sha256:abc",
    ...options,
    onFile: async (file, body) => {
      const bytes = new Uint8Array(await new Response(body).arrayBuffer());
      files[file.path] =
        `${bytes.length}:${Buffer.from(await crypto.subtle.digest("SHA-256", bytes)).toString("hex")}`;
    },
  });
  return files;
}

const refuse = (reason: string) => new OciError("UNSAFE_ARCHIVE", reason);

/** The stream zstdFrames passes on, or its error. */
async function frames(bytes: Uint8Array, size?: number): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  const reader = chunked(bytes, size).pipeThrough(zstdFrames(refuse)).getReader();
  for (;;) {
    const next = await reader.read();
    if (next.done) return out;
    out.push(next.value);
  }
}

/** A frame: magic, descriptor, window descriptor, then `rest`. */
const frame = (...bytes: number[]) => new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, ...bytes]);
/** The last, raw, empty block of a frame. */
const EMPTY_LAST_BLOCK = [1, 0, 0];

describe("tar+zstd", () => {
  it("needs fzstd in Node 20 (no DecompressionStream zstd) — or uses Node's own", () => {
    const native = nativeZstdDecoder();
    if (Number(process.versions.node.split(".")[0]) < 22) expect(native).toBeUndefined();
    // Later Nodes may offer one: then it is a stream pair the extraction can pipe through.
    else expect(native === undefined || native.readable instanceof ReadableStream).toBe(true);
  });

  it("extracts what the zstd CLI compressed, equal to the plain and the gzip archive", async () => {
    const tar = await packTar(entries());
    const plain = await extract(chunked(tar));
    expect(Object.keys(plain)).toEqual([
      "model/config.json",
      "model/weights.bin",
      "model/empty",
      "tokenizer.json",
    ]);
    const gz = new Uint8Array(await new Response(gzip(chunked(tar))).arrayBuffer());
    expect(await extract(chunked(gz), { compression: "gzip" })).toEqual(plain);
    for (const level of [["-1"], ["-19"], ["--no-check"], ["-3", "--long=24"]]) {
      const compressed = zstd(tar, ...level);
      expect(compressed.length).toBeLessThan(tar.length);
      expect(await extract(chunked(compressed), { compression: "zstd" }), level.join(" ")).toEqual(plain);
      // Chunks of 1 and 7 bytes: every frame and block header split across chunks.
      expect(await extract(chunked(compressed, 7), { compression: "zstd" })).toEqual(plain);
    }
    expect(await extract(chunked(zstd(tar), 1), { compression: "zstd" })).toEqual(plain);
    // Streamed through stdin (no content size in the header, a window descriptor instead).
    const streamed = new Uint8Array(
      execFileSync("sh", ["-c", "cat | zstd -q -c"], { input: tar, maxBuffer: 1 << 30 }),
    );
    expect(await extract(chunked(streamed), { compression: "zstd" })).toEqual(plain);
  });

  it("extracts multi-frame input, with skippable frames between and an empty frame", async () => {
    const tar = await packTar(entries());
    const plain = await extract(chunked(tar));
    const cuts = [0, 1000, 300_000, 600_001, tar.length];
    const parts = cuts.slice(1).map((end, i) => zstd(tar.subarray(cuts[i], end)));
    const skippable = new Uint8Array([0x5e, 0x2a, 0x4d, 0x18, 5, 0, 0, 0, 1, 2, 3, 4, 5]);
    const empty = zstd(new Uint8Array(0));
    const multi = new Uint8Array(
      await new Blob([
        skippable,
        parts[0] as Uint8Array<ArrayBuffer>,
        empty as Uint8Array<ArrayBuffer>,
        ...parts.slice(1).flatMap((p) => [p as Uint8Array<ArrayBuffer>, skippable]),
      ]).arrayBuffer(),
    );
    expect(await extract(chunked(multi), { compression: "zstd" })).toEqual(plain);
    expect(await extract(chunked(multi, 5), { compression: "zstd" })).toEqual(plain);
    // zstd -d agrees that it is one stream.
    expect(equal(new Uint8Array(execFileSync("zstd", ["-q", "-d", "-c"], { input: multi })), tar)).toBe(true);
  });

  it("refuses a frame that asks for a window over 128 MiB before decoding it (zstd --long=31)", async () => {
    const tar = await packTar(entries());
    const long = new Uint8Array(
      execFileSync("sh", ["-c", "cat | zstd -q -c --long=31"], { input: tar, maxBuffer: 1 << 30 }),
    );
    // Frame_Header_Descriptor without single segment; Window_Descriptor 0xa8: 2^(10+21) = 2 GiB.
    expect(long[5]).toBe(0xa8);
    const error = await failure(extract(chunked(long), { compression: "zstd" }));
    expect(error).toBeInstanceOf(OciError);
    expect(error.code).toBe("UNSAFE_ARCHIVE");
    expect(error.message).toBe(
      "Cannot extract layer sha256:abc: a zstd frame asks for a window of 2147483648 bytes, more than the 134217728 allowed; nothing of it was kept",
    );
    // zstd itself refuses it without --long=31 or --memory.
    expect(() => execFileSync("zstd", ["-q", "-d", "-c"], { input: long, stdio: "pipe" })).toThrow();
  });

  it("refuses a huge window in a later frame, and a huge single-segment content size", async () => {
    const first = zstd(new TextEncoder().encode("a"));
    const huge = frame(0x00, 0x90, ...EMPTY_LAST_BLOCK); // 2^28
    const both = new Uint8Array([...first, ...huge]);
    expect((await failure(frames(both))).message).toBe(
      "a zstd frame asks for a window of 268435456 bytes, more than the 134217728 allowed",
    );
    // Single segment, 8-byte content size 2^40: the window is the content size.
    const single = frame(0xe0, 0, 0, 0, 0, 0, 1, 0, 0, ...EMPTY_LAST_BLOCK);
    expect((await failure(frames(single))).message).toMatch(/window of 1099511627776 bytes/);
    // fzstd alone reads that as a 0-byte window and 2 GiB windows as allowed: the check comes first.
    const error = await failure(
      new Response(
        decompressZstd(chunked(huge), (r) => new OciError("UNSAFE_ARCHIVE", r), false),
      ).arrayBuffer(),
    );
    expect(error.code).toBe("UNSAFE_ARCHIVE");
  });

  it("reads the window from the Window_Descriptor or the content size (RFC 8878 §3.1.1.1.2)", () => {
    expect(ZSTD_MAX_WINDOW).toBe(134_217_728);
    expect(zstdWindowSize(frame(0x00, 0x00))).toBe(1024);
    expect(zstdWindowSize(frame(0x00, 0x88))).toBe(2 ** 27);
    expect(zstdWindowSize(frame(0x00, 0x89))).toBe(2 ** 27 + 2 ** 24);
    expect(zstdWindowSize(frame(0x00, 0x81))).toBe(2 ** 26 + 2 ** 23);
    expect(zstdWindowSize(frame(0x00, 0x8f))).toBe(2 ** 27 + 7 * 2 ** 24);
    expect(zstdWindowSize(frame(0x00, 0x03))).toBe(1024 + 3 * 128);
    expect(zstdWindowSize(frame(0x00, 0x0b))).toBe(2048 + 3 * 256);
    expect(zstdWindowSize(frame(0x20, 0xff))).toBe(255);
    expect(zstdWindowSize(frame(0x60, 0xff, 0x01))).toBe(511 + 256);
    expect(zstdWindowSize(frame(0xa0, 0x01, 0x02, 0x03, 0x84))).toBe(0x84030201);
    expect(zstdWindowSize(frame(0xe0, 1, 2, 3, 4, 5, 6, 7, 0))).toBe(0x04030201 + 0x070605 * 2 ** 32);
    // A dictionary ID (here 2 bytes) comes before the content size.
    expect(zstdWindowSize(frame(0x22, 9, 9, 0x10))).toBe(16);
    // With a window descriptor, the content size does not count.
    expect(zstdWindowSize(frame(0xc0, 0x50, 1, 0, 0, 0, 0, 0, 0, 1))).toBe(2 ** 20);
  });

  it("passes a window of exactly 128 MiB and refuses one step more", async () => {
    expect(await frames(frame(0x00, 0x88, ...EMPTY_LAST_BLOCK))).toHaveLength(2);
    expect((await failure(frames(frame(0x00, 0x89, ...EMPTY_LAST_BLOCK)))).message).toMatch(
      /window of 150994944 bytes/,
    );
  });

  it.each<[string, Uint8Array, string]>([
    [
      "not zstd",
      new Uint8Array([0x1f, 0x8b, 8, 0, 0]),
      "it is not zstd data (a frame starts with 0x00088b1f)",
    ],
    [
      "a reserved header bit",
      frame(0x08, 0x00, ...EMPTY_LAST_BLOCK),
      "a zstd frame header has its reserved bit set",
    ],
    [
      "a dictionary",
      frame(0x01, 0x00, 7, ...EMPTY_LAST_BLOCK),
      "a zstd frame needs dictionary 7, which no layer provides",
    ],
    [
      "a 4-byte dictionary in a single segment",
      frame(0x23, 1, 1, 0, 0, 5, ...EMPTY_LAST_BLOCK),
      "a zstd frame needs dictionary 257, which no layer provides",
    ],
    ["a reserved block type", frame(0x00, 0x00, 0x07, 0, 0), "a zstd block has the reserved block type"],
    [
      "a block larger than its window",
      frame(0x00, 0x00, 0x09, 0x20, 0x00), // raw, 1025 bytes in a 1 KiB window
      "a zstd block of 1025 bytes is larger than its frame allows (1024)",
    ],
    [
      "a block over 128 KiB",
      frame(0x00, 0x50, 0x09, 0x00, 0x10), // compressed, 131073 bytes
      "a zstd block of 131073 bytes is larger than its frame allows (131072)",
    ],
    ["a header cut short", frame(0x00), "it is truncated (its last zstd frame ends early)"],
    [
      "a block cut short",
      frame(0x00, 0x00, 0x21, 0x00, 0x00, 1, 2),
      "it is truncated (its last zstd frame ends early)",
    ],
    [
      "no last block",
      frame(0x00, 0x00, 0x00, 0x00, 0x00),
      "it is truncated (its last zstd frame ends early)",
    ],
    [
      "a missing checksum",
      frame(0x04, 0x00, ...EMPTY_LAST_BLOCK, 1, 2),
      "it is truncated (its last zstd frame ends early)",
    ],
    [
      "a skippable frame cut short",
      new Uint8Array([0x50, 0x2a, 0x4d, 0x18, 9, 0, 0, 0, 1]),
      "it is truncated (its last zstd frame ends early)",
    ],
  ])("refuses %s", async (_, bytes, reason) => {
    for (const size of [1, 3, 1000]) {
      const error = await failure(frames(bytes, size));
      expect(error.code).toBe("UNSAFE_ARCHIVE");
      expect(error.message).toBe(reason);
    }
  });

  it("passes RLE blocks, checksums and block sizes up to the limit", async () => {
    const rle = frame(0x04, 0x00, 0x03 | (1024 << 3), 0x00, 0x00, 0x61, 1, 2, 3, 4);
    rle[6] = ((1024 << 3) | 3) & 0xff;
    rle[7] = ((1024 << 3) >> 8) & 0xff;
    rle[8] = 0;
    const out = await frames(rle, 1000);
    // Cut after the header, after the block and after the checksum.
    expect(out.map((c) => c.length)).toEqual([6, 4, 4]);
    const text = await new Response(
      chunked(rle).pipeThrough(zstdFrames(refuse)).pipeThrough(zstdDecoder()),
    ).text();
    expect(text).toBe("a".repeat(1024));
  });

  it("refuses a corrupt frame with UNSAFE_ARCHIVE, never a raw exception", async () => {
    const tar = await packTar(entries());
    const compressed = zstd(tar, "-19");
    const plain = await extract(chunked(tar));
    // A flipped bit in a block header, and one in compressed data.
    const descriptor = compressed[4] as number;
    const single = (descriptor >> 5) & 1;
    const blockHeader = 5 + 1 - single + ([single, 2, 4, 8][descriptor >> 6] as number);
    // The first block's type made the reserved one: zstdFrames refuses it.
    const reserved = compressed.slice();
    reserved[blockHeader] = (reserved[blockHeader] as number) | 0x06;
    const error = await failure(extract(chunked(reserved), { compression: "zstd" }));
    expect(error.message).toBe(
      "Cannot extract layer sha256:abc: a zstd block has the reserved block type; nothing of it was kept",
    );
    // Its literals section broken: the decoder throws, and the walk refuses the archive.
    const broken = compressed.slice();
    broken.fill(0xff, blockHeader + 3, blockHeader + 12);
    const decoding = await failure(extract(chunked(broken), { compression: "zstd" }));
    expect(decoding).toBeInstanceOf(OciError);
    expect(decoding.code).toBe("UNSAFE_ARCHIVE");
    expect(decoding.message).toMatch(
      /^Cannot extract layer sha256:abc: it is truncated or corrupt \(.+\); nothing of it was kept$/,
    );
    expect(decoding.cause).toBeInstanceOf(Error);
    // Wherever a byte breaks, the walk fails with UNSAFE_ARCHIVE or reads other bytes (fzstd does not
    // check the frame checksum; the layer's digest was checked before), never with another error.
    for (let at = 4; at < compressed.length; at += 97) {
      const bad = compressed.slice();
      bad[at] = (bad[at] as number) ^ 0x5a;
      const result = await extract(chunked(bad), { compression: "zstd" }).catch((e: unknown) => e);
      if (result instanceof Error) {
        expect(result, `byte ${at}: ${result.message}`).toBeInstanceOf(OciError);
        expect((result as OciError).code).toBe("UNSAFE_ARCHIVE");
      } else expect(Object.keys(result as object).length).toBeLessThanOrEqual(Object.keys(plain).length + 1);
    }
    const cut = await failure(
      extract(chunked(compressed.subarray(0, compressed.length - 10)), { compression: "zstd" }),
    );
    expect(cut.code).toBe("UNSAFE_ARCHIVE");
    expect(cut.message).toBe(
      "Cannot extract layer sha256:abc: it is truncated (its last zstd frame ends early); nothing of it was kept",
    );
  });

  it("stops a decompression bomb by maxTotalBytes, past the archive's end too", async () => {
    const zeros = new Uint8Array(64 * 1024 * 1024);
    const bomb = zstd(
      await packTar([{ header: { name: "zeros.bin", size: zeros.length, type: "file" }, body: zeros }]),
      "-19",
    );
    expect(bomb.length).toBeLessThan(64 * 1024);
    const error = await failure(extract(chunked(bomb), { compression: "zstd", maxTotalBytes: 1 << 20 }));
    expect(error.message).toBe(
      "Cannot extract layer sha256:abc: its files add up to more than 1048576 bytes; nothing of it was kept",
    );
    // 64 MiB of zeros after the end of a small archive: no entry counts them, the decoded bytes do.
    const tar = await packTar([{ header: { name: "a", size: 1, type: "file" }, body: "a" }]);
    const trailing = new Uint8Array(tar.length + zeros.length);
    trailing.set(tar);
    const hidden = zstd(trailing, "-19");
    const limits = { maxTotalBytes: 1 << 20, maxEntries: 4 };
    const limit = (1 << 20) + 4 * 16 * 1024 + (1 << 20);
    for (const compression of ["zstd", "gzip"] as const) {
      const source = compression === "zstd" ? chunked(hidden) : gzip(chunked(trailing));
      const refused = await failure(extract(source, { compression, ...limits }));
      expect(refused.message).toBe(
        `Cannot extract layer sha256:abc: it decompresses to more than ${limit} bytes; nothing of it was kept`,
      );
    }
    // Within the limit, the same trailing zeros are a valid archive's end.
    const small = zstd(new Uint8Array([...tar, ...new Uint8Array(1 << 20)]));
    expect(await extract(chunked(small), { compression: "zstd", ...limits })).toEqual({
      a: expect.stringMatching(/^1:/),
    });
  });

  it("bounds the decoded bytes at maxTotalBytes + 16 KiB an entry + 1 MiB exactly; plain tars by their size", async () => {
    const tar = await packTar([
      { header: { name: "a", size: 1, type: "file", mtime: new Date(0) }, body: "a" },
    ]);
    const length = 1024 + 16 * 1024 + 1024 * 1024;
    const exact = new Uint8Array(length);
    exact.set(tar);
    const compressed = zstd(exact);
    const at = (maxTotalBytes: number) =>
      extract(chunked(compressed), { compression: "zstd", maxEntries: 1, maxTotalBytes });
    expect(Object.keys(await at(1024))).toEqual(["a"]);
    expect((await failure(at(1023))).message).toBe(
      `Cannot extract layer sha256:abc: it decompresses to more than ${length - 1} bytes; nothing of it was kept`,
    );
    // An uncompressed tar is its verified size: no decoded-bytes bound.
    expect(Object.keys(await extract(chunked(exact), { maxEntries: 1, maxTotalBytes: 1 }))).toEqual(["a"]);
  });

  describe('with a runtime that has DecompressionStream("zstd")', () => {
    afterEach(() => vi.unstubAllGlobals());

    it("decodes with it by default and with fzstd when told, the frames checked either way", async () => {
      const formats: string[] = [];
      // Stands in for a native decoder: passes the (checked) zstd bytes through unchanged.
      class FakeDecompressionStream {
        constructor(format: string) {
          if (format !== "zstd") throw new TypeError(`no ${format}`);
          formats.push(format);
          // biome-ignore lint/correctness/noConstructorReturn: a stand-in
          return new TransformStream<Uint8Array, Uint8Array>();
        }
      }
      vi.stubGlobal("DecompressionStream", FakeDecompressionStream);
      expect(nativeZstdDecoder()).toBeInstanceOf(TransformStream);
      const plain = new TextEncoder().encode("weights ".repeat(10_000));
      const compressed = zstd(plain);
      const read = async (s: ReadableStream<Uint8Array>) =>
        new Uint8Array(await new Response(s).arrayBuffer());
      expect(await read(decompressZstd(chunked(compressed), refuse))).toEqual(compressed);
      expect(formats).toEqual(["zstd", "zstd"]);
      expect(await read(decompressZstd(chunked(compressed), refuse, false))).toEqual(plain);
      expect(formats).toHaveLength(2);
      const huge = frame(0x00, 0xa8, ...EMPTY_LAST_BLOCK);
      expect((await failure(read(decompressZstd(chunked(huge), refuse)))).message).toMatch(
        /window of 2147483648/,
      );
    });
  });

  it("passes no empty chunk on (an empty frame decodes to nothing)", async () => {
    const out: Uint8Array[] = [];
    const reader = chunked(zstd(new Uint8Array(0)))
      .pipeThrough(zstdFrames(refuse))
      .pipeThrough(zstdDecoder())
      .getReader();
    for (let next = await reader.read(); !next.done; next = await reader.read()) out.push(next.value);
    expect(out).toEqual([]);
  });

  it("decodes one block per chunk at most: a bomb in one chunk does not land in memory at once", async () => {
    const bomb = zstd(new Uint8Array(32 * 1024 * 1024), "-19");
    const reader = chunked(bomb, bomb.length)
      .pipeThrough(zstdFrames(refuse))
      .pipeThrough(zstdDecoder())
      .getReader();
    let total = 0;
    let largest = 0;
    for (;;) {
      const next = await reader.read();
      if (next.done) break;
      total += next.value.length;
      largest = Math.max(largest, next.value.length);
    }
    expect(total).toBe(32 * 1024 * 1024);
    expect(largest).toBeLessThanOrEqual(128 * 1024);
  });
});
