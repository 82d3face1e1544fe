import { packTar, type TarEntry } from "modern-tar";
import { describe, expect, it } from "vitest";
import { type Compression, safeEntryPath, type WalkTarOptions, walkTar } from "../../src/archive/tar.js";
import { OciError } from "../../src/index.js";
import { failure } from "../support/failure.js";

const file = (name: string, body = "x"): TarEntry => ({
  header: { name, size: new TextEncoder().encode(body).byteLength, type: "file" },
  body,
});
const stream = (bytes: Uint8Array) => new Blob([bytes as Uint8Array<ArrayBuffer>]).stream();

async function refusal(bytes: Uint8Array, limits: Partial<WalkTarOptions> = {}): Promise<OciError> {
  try {
    await walkTar(stream(bytes), { what: "test.tar", ...limits });
  } catch (e) {
    return e as OciError;
  }
  throw new Error("accepted");
}

describe("walkTar", () => {
  it("lists regular files with normalised paths and hands each body over", async () => {
    const tar = await packTar([
      { header: { name: "./", size: 0, type: "directory" } },
      file("./config.json", '{"a":1}'),
      { header: { name: "tokenizer/", size: 0, type: "directory" } },
      file("tokenizer//vocab.txt", "hello"),
    ]);
    const bodies: Record<string, string> = {};
    const files = await walkTar(stream(tar), {
      what: "t",
      onFile: async (f, body) => {
        bodies[f.path] = await new Response(body).text();
      },
    });
    expect(files).toEqual([
      { path: "config.json", size: 7 },
      { path: "tokenizer/vocab.txt", size: 5 },
    ]);
    expect(bodies).toEqual({ "config.json": '{"a":1}', "tokenizer/vocab.txt": "hello" });
  });

  it("reads gzip archives", async () => {
    const tar = await packTar([file("a.txt", "abc")]);
    const gz = await new Response(stream(tar).pipeThrough(new CompressionStream("gzip"))).arrayBuffer();
    expect(await walkTar(stream(new Uint8Array(gz)), { what: "t", compression: "gzip" })).toEqual([
      { path: "a.txt", size: 3 },
    ]);
  });

  it.each<[string, TarEntry[], RegExp]>([
    ["a traversal", [file("../../etc/passwd")], /climbs out/],
    ["a nested traversal", [file("a/b/../../../x")], /climbs out/],
    ["an absolute path", [file("/etc/passwd")], /absolute/],
    [
      "a symlink",
      [{ header: { name: "link", size: 0, type: "symlink", linkname: "/etc/passwd" } }],
      /symlink/,
    ],
    ["a hardlink", [{ header: { name: "hard", size: 0, type: "link", linkname: "config.json" } }], /link/],
    ["a device", [{ header: { name: "dev", size: 0, type: "character-device" } }], /character-device/],
    ["a fifo", [{ header: { name: "pipe", size: 0, type: "fifo" } }], /fifo/],
    ["a duplicate name", [file("config.json"), file("./config.json")], /appears twice/],
  ])("refuses %s with UNSAFE_ARCHIVE", async (_, entries, reason) => {
    const error = await refusal(await packTar(entries));
    expect(error.code).toBe("UNSAFE_ARCHIVE");
    expect(error.message).toMatch(reason);
  });

  it("refuses more entries than the limit", async () => {
    const entries = Array.from({ length: 11 }, (_, i) => file(`f${i}`));
    expect((await refusal(await packTar(entries), { maxEntries: 10 })).message).toMatch(
      /more than 10 entries/,
    );
  });

  it("refuses files adding up to more than the cap before reading them", async () => {
    const tar = await packTar([file("a", "x".repeat(600)), file("b", "y".repeat(600))]);
    expect((await refusal(tar, { maxTotalBytes: 1000 })).message).toMatch(/more than 1000 bytes/);
  });

  it("refuses a truncated archive", async () => {
    const tar = await packTar([file("a.bin", "z".repeat(5000)), file("b.bin", "q".repeat(5000))]);
    const error = await refusal(tar.subarray(0, 3000), {});
    expect(error.code).toBe("UNSAFE_ARCHIVE");
    expect(error.message).toMatch(/truncated|corrupt/);
  });

  it("refuses NUL, backslashes and drive letters in names", () => {
    for (const name of ["a\0b", "a\\..\\b", "C:/x"])
      expect(() => safeEntryPath(name, "t")).toThrow(/Cannot extract t/);
    expect(safeEntryPath("./a/./b", "t")).toBe("a/b");
  });
});

describe("walkTar edges (pinned by mutation testing)", () => {
  const names = (n: number) => Array.from({ length: n }, (_, i) => file(`f${i}`));

  it("takes exactly maxEntries entries and exactly maxTotalBytes bytes", async () => {
    expect(await walkTar(stream(await packTar(names(10))), { what: "t", maxEntries: 10 })).toHaveLength(10);
    const tar = await packTar([file("a", "x".repeat(600)), file("b", "y".repeat(400))]);
    expect(await walkTar(stream(tar), { what: "t", maxTotalBytes: 1000 })).toHaveLength(2);
  });

  it("refuses NUL, backslashes and drive letters with their reasons", () => {
    const reason = (name: string) => {
      try {
        safeEntryPath(name, "t");
      } catch (e) {
        return [(e as OciError).code, (e as OciError).message];
      }
      return "accepted";
    };
    expect(reason("a\0b")).toEqual([
      "UNSAFE_ARCHIVE",
      "Cannot extract t: entry name contains NUL; nothing of it was kept",
    ]);
    expect(reason("a\\..\\b")).toEqual([
      "UNSAFE_ARCHIVE",
      'Cannot extract t: entry "a\\..\\b" contains a backslash; nothing of it was kept',
    ]);
    expect(reason("C:/x")).toEqual([
      "UNSAFE_ARCHIVE",
      'Cannot extract t: entry "C:/x" has an absolute path; nothing of it was kept',
    ]);
    // A drive letter only at the start: a colon further on is part of a POSIX name.
    expect(safeEntryPath("logs/step:10.txt", "t")).toBe("logs/step:10.txt");
  });

  it('skips a file entry that names the root ("./" as V7 tars write it), handing no body over', async () => {
    const seen: string[] = [];
    const tar = await packTar([file("./", ""), file(".", ""), file("a.txt", "abc")]);
    const files = await walkTar(stream(tar), {
      what: "t",
      onFile: async (f, body) => {
        seen.push(f.path);
        await body.cancel();
      },
    });
    expect(files).toEqual([{ path: "a.txt", size: 3 }]);
    expect(seen).toEqual(["a.txt"]);
  });

  it("keeps the decoder's error as the cause of a corrupt archive", async () => {
    const tar = await packTar([file("a.bin", "z".repeat(5000))]);
    const error = await refusal(tar.subarray(0, 3000));
    expect(error.cause).toBeInstanceOf(Error);
  });

  it("passes on an OciError of the stream it reads (a digest mismatch is not an unsafe archive)", async () => {
    const tar = await packTar([file("a.bin", "z".repeat(5000)), file("b.bin", "q".repeat(5000))]);
    const mismatch = new OciError("DIGEST_MISMATCH", "the layer hashes to something else");
    const source = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(tar.slice(0, 4096));
        controller.error(mismatch);
      },
    });
    await expect(walkTar(source, { what: "t" })).rejects.toBe(mismatch);
  });

  it("refuses an entry whose body breaks off while onFile reads it, naming the entry", async () => {
    const tar = await packTar([file("a.bin", "z".repeat(5000)), file("b.bin", "q".repeat(5000))]);
    const error = await refusal(tar.subarray(0, 3000), {
      onFile: async (_, body) => void (await new Response(body).arrayBuffer()),
    });
    expect(error.code).toBe("UNSAFE_ARCHIVE");
    expect(error.message).toBe(
      'Cannot extract test.tar: entry "a.bin" is truncated or unreadable; nothing of it was kept',
    );
    expect(error.cause).toBeDefined();
  });

  it("passes on an OciError that onFile throws (the store's, say) unchanged", async () => {
    const full = new OciError("QUOTA_EXCEEDED", "the store is full");
    const tar = await packTar([file("a.bin", "abc")]);
    await expect(
      walkTar(stream(tar), {
        what: "t",
        onFile: async () => {
          throw full;
        },
      }),
    ).rejects.toBe(full);
  });

  it("refuses a compression the runtime cannot decompress with UNSUPPORTED_ARTIFACT", async () => {
    const tar = await packTar([file("a.txt", "abc")]);
    const error = await failure(walkTar(stream(tar), { what: "t", compression: "lz4" as Compression }));
    expect(error.code).toBe("UNSUPPORTED_ARTIFACT");
    expect(error.message).toBe("Cannot extract t: this runtime cannot decompress lz4");
    expect(error.cause).toBeInstanceOf(Error);
  });
});
