import { packTar, type TarEntry } from "modern-tar";
import { describe, expect, it } from "vitest";
import { safeEntryPath, walkTar } from "../../src/archive/tar.js";
import type { OciError } from "../../src/index.js";

const file = (name: string, body = "x"): TarEntry => ({
  header: { name, size: new TextEncoder().encode(body).byteLength, type: "file" },
  body,
});
const stream = (bytes: Uint8Array) => new Blob([bytes as Uint8Array<ArrayBuffer>]).stream();

async function refusal(bytes: Uint8Array, limits = {}): Promise<OciError> {
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
