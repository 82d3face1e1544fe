// TarLocator (src/archive/tar-locate.ts) against tars written by GNU tar (gnu, posix/pax and ustar
// formats), Python's tarfile and modern-tar: every file the walker accepts is found at the offset
// where its bytes lie, whatever chunks the layer arrives in.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createDefaultHasher } from "../../src/digest/hashers.js";
import { layerReader } from "../../src/model/extract.js";
import type { PlannedLayer } from "../../src/model/layers.js";
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
        expect(file.digest, file.path).toBe(sha(want));
        expect(file.layer?.digest).toBe(sha(tar));
      }
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
