// TarLocator (src/archive/tar-locate.ts) against tars written by GNU tar (gnu, posix/pax and ustar
// formats), Python's tarfile and modern-tar: it finds the files walkTar (modern-tar) finds, in the
// same order, each at the offset where its bytes lie, whatever chunks the layer arrives in.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { packTar, type TarEntry } from "modern-tar";
import { afterAll, describe, expect, it } from "vitest";
import { type ArchiveLimits, walkTar } from "../../src/archive/tar.js";
import { TarLocator } from "../../src/archive/tar-locate.js";
import { createDefaultHasher } from "../../src/digest/hashers.js";
import type { OciError } from "../../src/errors.js";
import { layerReader } from "../../src/model/extract.js";
import type { PlannedLayer } from "../../src/model/layers.js";
import { concat } from "../support/blobs.js";
import { failure } from "../support/failure.js";
import { tarOf } from "../support/models.js";

const sha = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const long = `${"deep-folder-name/".repeat(9)}weights.safetensors`; // 171 bytes: no ustar name field holds it
const split = `${"d".repeat(90)}/${"e".repeat(60)}.bin`; // ustar's prefix + name
const FILES: Record<string, Uint8Array> = {
  "config.json": new TextEncoder().encode('{"a":1}'),
  "empty.txt": new Uint8Array(0),
  "block.bin": new Uint8Array(512).fill(7),
  "odd.bin": Uint8Array.from({ length: 70_001 }, (_, i) => (i * 31) & 0xff),
  [long]: Uint8Array.from({ length: 1500 }, (_, i) => i & 0xff),
  [split]: new Uint8Array(3000).fill(9),
};

const root = mkdtempSync(join(tmpdir(), "oml-tar-locate-"));
const src = join(root, "src");
for (const [path, bytes] of Object.entries(FILES)) {
  mkdirSync(join(src, dirname(path)), { recursive: true });
  writeFileSync(join(src, path), bytes);
}
afterAll(() => rmSync(root, { recursive: true, force: true }));

function gnuTar(format: string): Uint8Array {
  const out = join(root, `${format}.tar`);
  execFileSync("tar", [`--format=${format}`, "-cf", out, "-C", src, ...Object.keys(FILES)]);
  return new Uint8Array(readFileSync(out));
}

function pythonTar(format: string): Uint8Array {
  const out = join(root, `py-${format}.tar`);
  const script = `import tarfile,sys\nwith tarfile.open(sys.argv[1],"w",format=tarfile.${format}) as t:\n  for p in sys.argv[3:]: t.add(sys.argv[2]+"/"+p, arcname=p)\n`;
  execFileSync("/usr/bin/python3", ["-c", script, out, src, ...Object.keys(FILES)]);
  return new Uint8Array(readFileSync(out));
}

function layerOf(tar: Uint8Array): PlannedLayer {
  return {
    descriptor: {
      mediaType: "application/vnd.cncf.model.weight.v1.tar",
      digest: sha(tar),
      size: tar.byteLength,
    },
    path: undefined,
    role: "weights",
    archive: true,
    compression: undefined,
    weights: true,
    modelWeight: false,
  };
}

async function locate(tar: Uint8Array, chunk: number) {
  const reader = layerReader(layerOf(tar), createDefaultHasher);
  for (let at = 0; at < tar.byteLength; at += chunk) await reader.write(tar.slice(at, at + chunk));
  return reader.close();
}

describe("TarLocator: each file of an uncompressed tar is a byte range of it", () => {
  const writers: [string, () => Promise<Uint8Array> | Uint8Array][] = [
    ["GNU tar --format=gnu (long names in 'L' records)", () => gnuTar("gnu")],
    ["GNU tar --format=posix (PAX records)", () => gnuTar("posix")],
    ["Python tarfile GNU_FORMAT", () => pythonTar("GNU_FORMAT")],
    ["Python tarfile PAX_FORMAT", () => pythonTar("PAX_FORMAT")],
    ["modern-tar (what pack writes)", () => tarOf(FILES)],
  ];
  it.each(writers)("%s, fed in chunks of 1, 511, 513 and 65536 bytes", async (_, write) => {
    const tar = await write();
    for (const chunk of [1, 511, 513, 65_536]) {
      const files = await locate(tar, chunk);
      expect(files.map((f) => f.path).sort(), `chunk ${chunk}`).toEqual(Object.keys(FILES).sort());
      for (const file of files) {
        const want = FILES[file.path] as Uint8Array;
        const at = file.layer?.offset as number;
        expect(file.size, file.path).toBe(want.byteLength);
        expect(Buffer.from(tar.subarray(at, at + file.size)).equals(Buffer.from(want)), file.path).toBe(true);
        expect(file.digest, file.path).toBeUndefined();
        expect(file.layer?.digest).toBe(sha(tar));
      }
      const walked = await walkTar(new Blob([tar as Uint8Array<ArrayBuffer>]).stream(), { what: "t" });
      expect(files.map((f) => ({ path: f.path, size: f.size }))).toEqual(walked);
    }
  });

  it("GNU tar --format=ustar splits a long name into prefix and name, read back whole", async () => {
    const files = await locate(gnuTar("ustar"), 4096);
    const file = files.find((f) => f.path === split);
    expect(file?.size).toBe(3000);
  });

  it("refuses a tar cut inside a file with UNSAFE_ARCHIVE", async () => {
    const tar = await tarOf(FILES);
    const error = await failure(locate(tar.subarray(0, 3000), 512));
    expect(error.code).toBe("UNSAFE_ARCHIVE");
  });
});

/** The refusal of a tar by TarLocator fed in `chunk`-byte pieces, or "accepted" with its files. */
function locatorVerdict(tar: Uint8Array, limits: ArchiveLimits = {}, chunk = 700) {
  const locator = new TarLocator("test.tar", limits);
  try {
    for (let at = 0; at < tar.byteLength; at += chunk) locator.write(tar.subarray(at, at + chunk));
    return { accepted: locator.end().map(({ path, size }) => ({ path, size })) };
  } catch (error) {
    return { code: (error as OciError).code, message: (error as Error).message };
  }
}

async function walkVerdict(tar: Uint8Array, limits: ArchiveLimits = {}) {
  try {
    return {
      accepted: await walkTar(new Blob([tar as Uint8Array<ArrayBuffer>]).stream(), {
        what: "test.tar",
        ...limits,
      }),
    };
  } catch (error) {
    return { code: (error as OciError).code, message: (error as Error).message };
  }
}

const entry = (name: string, body = "x", type: TarEntry["header"]["type"] = "file"): TarEntry => ({
  header: { name, size: type === "file" ? new TextEncoder().encode(body).byteLength : 0, type },
  ...(type === "file" ? { body } : {}),
});

/** A ustar header block for `name` of type `flag` claiming `size` bytes, its checksum right. */
function rawHeader(name: string, size: number, flag: string): Uint8Array {
  const block = new Uint8Array(512);
  const put = (at: number, text: string) => block.set(new TextEncoder().encode(text), at);
  put(0, name);
  put(100, "0000644\0");
  put(124, `${size.toString(8).padStart(11, "0")}\0`);
  put(136, "00000000000\0");
  put(156, flag);
  put(257, "ustar\0");
  put(263, "00");
  block.fill(0x20, 148, 156);
  put(
    148,
    `${block
      .reduce((n, b) => n + b, 0)
      .toString(8)
      .padStart(6, "0")}\0 `,
  );
  return block;
}
const END = new Uint8Array(1024);

describe("TarLocator checks every entry as walkTar does (it reads uncompressed tar layers alone)", () => {
  it.each<[string, TarEntry[], ArchiveLimits, RegExp]>([
    ["a traversal", [entry("../../etc/passwd")], {}, /climbs out/],
    ["an absolute path", [entry("/etc/passwd")], {}, /absolute/],
    ["a backslash", [entry("a\\..\\b")], {}, /backslash/],
    [
      "a symlink",
      [{ header: { name: "link", size: 0, type: "symlink", linkname: "/etc/passwd" } }],
      {},
      /symlink/,
    ],
    [
      "a symlink named like a directory",
      [{ header: { name: "ln/", size: 0, type: "symlink", linkname: "/" } }],
      {},
      /symlink/,
    ],
    ["a hardlink", [{ header: { name: "hard", size: 0, type: "link", linkname: "a" } }], {}, /link/],
    ["a device", [entry("dev", "", "character-device")], {}, /character-device/],
    ["a block device", [entry("blk", "", "block-device")], {}, /block-device/],
    ["a fifo", [entry("pipe", "", "fifo")], {}, /fifo/],
    ["a duplicate name", [entry("config.json"), entry("./config.json")], {}, /appears twice/],
    [
      "more entries than the limit",
      Array.from({ length: 11 }, (_, i) => entry(`f${i}`)),
      { maxEntries: 10 },
      /more than 10 entries/,
    ],
    [
      "more bytes than the limit",
      [entry("a", "x".repeat(600)), entry("b", "y".repeat(401))],
      { maxTotalBytes: 1000 },
      /more than 1000 bytes/,
    ],
  ])("refuses %s with walkTar's UNSAFE_ARCHIVE and message", async (_, entries, limits, reason) => {
    const tar = await packTar(entries);
    const located = locatorVerdict(tar, limits);
    expect(located.code).toBe("UNSAFE_ARCHIVE");
    expect(located.message).toMatch(reason);
    expect(located).toEqual(await walkVerdict(tar, limits));
  });

  it("takes exactly the limits, skips directories and the root, and agrees with walkTar", async () => {
    const tar = await packTar([
      entry("./", "", "directory"),
      entry("./", ""),
      entry("dir/", "", "directory"),
      entry("a", "x".repeat(600)),
      entry("dir/b", "y".repeat(400)),
    ]);
    const limits = { maxEntries: 5, maxTotalBytes: 1000 };
    const located = locatorVerdict(tar, limits);
    expect(located.accepted).toEqual([
      { path: "a", size: 600 },
      { path: "dir/b", size: 400 },
    ]);
    expect(located).toEqual(await walkVerdict(tar, limits));
  });

  it("skips the body of a file named like a directory, and gives a directory's or link's size no body", async () => {
    const body = new Uint8Array(512).fill(0x41);
    const tar = concat(
      rawHeader("weird/", 512, "0"),
      body,
      rawHeader("dir", 1024, "5"), // modern-tar reads no body for a directory, whatever its size
      rawHeader("./", 512, "2"), // nor for a link, skipped here as it names the root
      rawHeader("a.txt", 3, "0"),
      new Uint8Array(512).fill(0x62, 0, 3),
      END,
    );
    const located = locatorVerdict(tar, {}, 100);
    expect(located.accepted).toEqual([{ path: "a.txt", size: 3 }]);
    expect(located).toEqual(await walkVerdict(tar));
  });

  it.each<[string, (tar: Uint8Array) => Uint8Array, RegExp]>([
    ["cut inside a file", (tar) => tar.subarray(0, 700), /ends before its end-of-archive blocks/],
    ["ending after one zero block", (tar) => tar.subarray(0, tar.byteLength - 512), /ends before/],
    ["without its end blocks", (tar) => tar.subarray(0, tar.byteLength - 1024), /ends before/],
    [
      "with a header that fails its checksum",
      (tar) => {
        const bad = tar.slice();
        bad[0] = (bad[0] as number) ^ 1;
        return bad;
      },
      /fails its checksum/,
    ],
    ["with a size that is not octal", (tar) => corruptSize(tar), /not a number/],
    [
      "with a header after a lone zero block",
      (tar) =>
        concat(tar.subarray(0, tar.byteLength - 1024), new Uint8Array(512), tar.subarray(0, 1024), END),
      /follows a zero block/,
    ],
    ["with bytes other than zeros after its end", (tar) => concat(tar, Uint8Array.of(1)), /other than zeros/],
  ])("refuses a tar %s as truncated or corrupt, as walkTar does", async (_, cut, reason) => {
    const tar = cut(await packTar([entry("a.bin", "z".repeat(600)), entry("b.bin", "q".repeat(600))]));
    for (const chunk of [1, 512, 700, 1 << 20]) {
      const located = locatorVerdict(tar, {}, chunk);
      expect(located.code, `chunk ${chunk}`).toBe("UNSAFE_ARCHIVE");
      expect(located.message, `chunk ${chunk}`).toMatch(/truncated or corrupt/);
      expect(located.message, `chunk ${chunk}`).toMatch(reason);
    }
    expect((await walkVerdict(tar)).code).toBe("UNSAFE_ARCHIVE");
  });

  it("accepts zeros after the end blocks (tar pads to its record size)", async () => {
    const tar = concat(await packTar([entry("a.bin", "z")]), new Uint8Array(9216));
    expect(locatorVerdict(tar).accepted).toEqual([{ path: "a.bin", size: 1 }]);
    expect(locatorVerdict(tar)).toEqual(await walkVerdict(tar));
  });

  it("refuses a metadata record over 8 MiB before reading it", () => {
    const located = locatorVerdict(concat(rawHeader("././@LongLink", 8 * 1024 * 1024 + 1, "L"), END));
    expect(located.message).toMatch(/metadata record is over 8 MiB/);
  });
});

/** The first header's size field made non-octal, its checksum fixed so that only the size is wrong. */
function corruptSize(tar: Uint8Array): Uint8Array {
  const bad = tar.slice();
  bad[124] = 0x39; // "9"
  bad.fill(0x20, 148, 156);
  const sum = bad.subarray(0, 512).reduce((n, b) => n + b, 0);
  bad.set(new TextEncoder().encode(`${sum.toString(8).padStart(6, "0")}\0 `), 148);
  return bad;
}

/** A PAX record body: `<length> <key>=<value>\n` for each entry, its length counting itself. */
function paxBody(records: [string, string][]): Uint8Array {
  let text = "";
  for (const [key, value] of records) {
    const rest = ` ${key}=${value}\n`;
    let length = rest.length + 1;
    while (`${length}${rest}`.length !== length) length = `${length}${rest}`.length;
    text += `${length}${rest}`;
  }
  return new TextEncoder().encode(text);
}

/** A metadata entry (PAX `x`/`g`, GNU `L`/`K`) holding `body`, padded to its blocks. */
function meta(flag: string, body: Uint8Array): Uint8Array {
  return concat(rawHeader("././@meta", body.byteLength, flag), body, new Uint8Array(-body.byteLength & 511));
}
const text = (s: string) => new TextEncoder().encode(s);
/** A regular file entry of `body`, its header's size field saying `size` (default: the body's). */
const fileEntry = (name: string, body: string, size = body.length) =>
  concat(rawHeader(name, size, "0"), text(body), new Uint8Array(-body.length & 511));
/** `header` with its bytes from `at` replaced by `bytes`, its checksum made right again. */
function patched(header: Uint8Array, at: number, bytes: number[] | Uint8Array): Uint8Array {
  const out = header.slice();
  out.set(bytes, at);
  out.fill(0x20, 148, 156);
  out.set(
    text(
      `${out
        .reduce((n, b) => n + b, 0)
        .toString(8)
        .padStart(6, "0")}\0 `,
    ),
    148,
  );
  return out;
}

describe("TarLocator reads headers as modern-tar does (crafted tars, both readers' verdicts equal)", () => {
  const cases: [string, () => Uint8Array][] = [
    [
      "a PAX size over the ustar one",
      () => concat(meta("x", paxBody([["size", "3"]])), fileEntry("a", "abc", 0), END),
    ],
    [
      "PAX sizes that are not plain decimal, ignored",
      () =>
        concat(
          meta("x", paxBody([["size", "-1"]])),
          fileEntry("a", "abc"),
          meta("x", paxBody([["size", "3x"]])),
          fileEntry("b", "abc"),
          meta("x", paxBody([["size", "x3"]])),
          fileEntry("c", "abc"),
          meta("x", paxBody([["size", "99999999999999999999"]])),
          fileEntry("d", "abc"),
          END,
        ),
    ],
    [
      "a PAX path",
      () => concat(meta("x", paxBody([["path", "deep/name.bin"]])), fileEntry("short", "xy"), END),
    ],
    [
      "a PAX record without '=' or with an empty key, skipped, and the records after it read",
      () =>
        concat(
          meta("x", concat(text("6 abc\n"), text("9 =value\n"), paxBody([["path", "kept.bin"]]))),
          fileEntry("short", "xy"),
          END,
        ),
    ],
    [
      "a PAX record list that stops at a bad length",
      () =>
        concat(
          meta("x", concat(text("0 path=x\n"), paxBody([["path", "lost"]]))),
          fileEntry("own", "q"),
          END,
        ),
    ],
    [
      "a PAX record list with no space",
      () => concat(meta("x", text("12path=lost\n")), fileEntry("own", "q"), END),
    ],
    [
      "a global PAX path (every entry after it has that name: a duplicate)",
      () => concat(meta("g", paxBody([["path", "same"]])), fileEntry("a", "1"), fileEntry("b", "2"), END),
    ],
    [
      "a global PAX size",
      () =>
        concat(meta("g", paxBody([["size", "2"]])), fileEntry("a", "12", 0), fileEntry("b", "34", 9), END),
    ],
    [
      "a per-entry PAX size over a global one",
      () =>
        concat(
          meta("g", paxBody([["size", "2"]])),
          meta("x", paxBody([["size", "3"]])),
          fileEntry("a", "123", 0),
          END,
        ),
    ],
    ["a GNU long name", () => concat(meta("L", text(`${"n".repeat(150)}\0`)), fileEntry("short", "ab"), END)],
    [
      "a GNU long link name, which names no file",
      () => concat(meta("K", text("target\0")), fileEntry("real", "ab"), END),
    ],
    [
      "a GNU long name after a PAX record (the PAX overrides dropped)",
      () =>
        concat(
          meta(
            "x",
            paxBody([
              ["path", "pax-name"],
              ["size", "1"],
            ]),
          ),
          meta("L", text("gnu-name\0")),
          fileEntry("own", "ab"),
          END,
        ),
    ],
    [
      "a PAX record after a GNU long name (both kept, PAX last)",
      () =>
        concat(
          meta("L", text("gnu-name\0")),
          meta("x", paxBody([["size", "2"]])),
          fileEntry("own", "ab", 0),
          END,
        ),
    ],
    ["an empty PAX record", () => concat(meta("x", new Uint8Array(0)), fileEntry("a", "ab"), END)],
    ["a name that fills its 100 bytes", () => concat(fileEntry("f".repeat(100), "ab"), END)],
    [
      "a ustar prefix under the GNU magic, ignored",
      () =>
        concat(
          patched(rawHeader("name", 2, "0"), 257, [
            ...text("ustar  \0"),
            ...new Uint8Array(80),
            ...text("pre"),
          ]),
          text("ab"),
          new Uint8Array(510),
          END,
        ),
    ],
    [
      "a ustar prefix under the POSIX magic",
      () =>
        concat(
          patched(rawHeader("name", 2, "0"), 345, text("pre/fix")),
          text("ab"),
          new Uint8Array(510),
          END,
        ),
    ],
    [
      "a size in base-256",
      () =>
        concat(
          patched(rawHeader("a", 0, "0"), 124, [0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3]),
          text("abc"),
          new Uint8Array(509),
          END,
        ),
    ],
    [
      "a size field of 12 octal digits, no NUL",
      () =>
        concat(
          patched(rawHeader("a", 0, "0"), 124, text("000000000003")),
          text("abc"),
          new Uint8Array(509),
          END,
        ),
    ],
    [
      "a size with leading spaces",
      () =>
        concat(
          patched(rawHeader("a", 0, "0"), 124, text("         3\0 ")),
          text("abc"),
          new Uint8Array(509),
          END,
        ),
    ],
    [
      "a size with an 8 in it",
      () =>
        concat(
          patched(rawHeader("a", 0, "0"), 124, text("0000000008\0 ")),
          text("abc"),
          new Uint8Array(509),
          END,
        ),
    ],
    [
      "a base-256 size past 2^53",
      () =>
        concat(
          patched(rawHeader("a", 0, "0"), 124, [0xff, ...new Uint8Array(11).fill(0xff)]),
          text("abc"),
          new Uint8Array(509),
          END,
        ),
    ],
    ["a file named '.', type 0", () => concat(rawHeader(".", 0, "0"), fileEntry("a", "x"), END)],
    [
      "a PAX size of several digits",
      () => concat(meta("x", paxBody([["size", "12"]])), fileEntry("a", "0123456789ab", 0), END),
    ],
    [
      "a file named as the root, type 0",
      () => concat(rawHeader("./", 512, "0"), new Uint8Array(512).fill(1), fileEntry("a", "x"), END),
    ],
    [
      "a metadata record of exactly 8 MiB",
      () =>
        concat(
          meta(
            "x",
            concat(
              paxBody([["path", "big"]]),
              new Uint8Array(8 * 1024 * 1024 - paxBody([["path", "big"]]).byteLength),
            ),
          ),
          fileEntry("a", "x"),
          END,
        ),
    ],
    [
      "an unknown type flag (a file to both)",
      () => concat(rawHeader("v", 2, "V"), text("ab"), new Uint8Array(510), END),
    ],
  ];
  it.each(cases)("%s", async (_, build) => {
    const tar = build();
    const located = locatorVerdict(tar, {}, 4096);
    const walked = await walkVerdict(tar);
    if (walked.code) expect(located.code).toBe(walked.code);
    else expect(located).toEqual(walked);
    // The locator's own reason, where it refuses.
    const reasons: Record<string, RegExp> = {
      "a size with an 8 in it": /a numeric field is not a number/,
      "a base-256 size past 2^53": /a size field is too large/,
    };
    if (reasons[_]) expect(located.message).toMatch(reasons[_] as RegExp);
    // Where the locator puts each file, its bytes are what modern-tar hands over for it.
    if (walked.code) return;
    const bodies: Uint8Array[] = [];
    await walkTar(new Blob([tar as Uint8Array<ArrayBuffer>]).stream(), {
      what: "t",
      onFile: async (_, body) => void bodies.push(new Uint8Array(await new Response(body).arrayBuffer())),
    });
    const locator = new TarLocator("t");
    locator.write(tar);
    const files = locator.end();
    expect(files.map((f) => Buffer.from(tar.subarray(f.offset, f.offset + f.size)).toString("hex"))).toEqual(
      bodies.map((b) => Buffer.from(b).toString("hex")),
    );
  });

  it("names where a tar went wrong", () => {
    const good = concat(fileEntry("a", "x"), END);
    expect(locatorVerdict(concat(good.subarray(0, 1536), rawHeader("b", 0, "0"), END), {}, 512).message).toBe(
      "Cannot extract test.tar: it is truncated or corrupt (a header follows a zero block at byte 1024); nothing of it was kept",
    );
    const bad = good.slice();
    bad[1] = 0x41;
    expect(locatorVerdict(bad).message).toBe(
      "Cannot extract test.tar: it is truncated or corrupt (the header at byte 0 fails its checksum); nothing of it was kept",
    );
  });
});
