// readZip by itself: what it lists and reads from an honest archive, byte for byte, and each lie it refuses
// with its code and reason. The archives are written here field by field, so a test can write any lie.
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { isOciError, OciError } from "../../src/index.js";
import { readZip, type ZipLimits } from "../../src/tensors/zip.js";
import { equal } from "../support/blobs.js";
import { concatZip, crc32, deflateRaw } from "../support/checkpoint-files.js";

const enc = new TextEncoder();

// readZip inflates on the calling thread: it never starts a web worker (a blob: URL that a page's
// content security policy may refuse, and a thread per archive). Every test below holds to it.
let workersStarted = 0;
beforeAll(() => {
  vi.stubGlobal(
    "Worker",
    class {
      constructor() {
        workersStarted++;
        throw new Error("no web workers here");
      }
    },
  );
});
afterAll(() => {
  vi.unstubAllGlobals();
});
afterEach(() => {
  expect(workersStarted, "web workers started").toBe(0);
});

/** Bytes that deflate cannot shrink. */
function noise(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0, x = seed; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}
const pattern = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7) % 251);

interface Member {
  name: string;
  body: Uint8Array;
  deflate?: boolean;
  /** General-purpose flags, in both headers. */
  flags?: number;
  /** Local header fields that lie. */
  local?: { name?: string; method?: number; sizes?: [number, number]; flags?: number };
  /** Central record sizes that lie: [compressed, uncompressed]. */
  sizes?: [number, number];
  /** Extra records in the local header, before a zip64 one when `zip64`. */
  extra?: Uint8Array;
  /** The local header's sizes as 0xffffffff and an extra record (id 1) of `zip64Length` bytes (16: both sizes). */
  zip64?: boolean;
  zip64Length?: number;
  crc?: number;
  /** Where the central record says the local header is. */
  offset?: number;
}

/** An extra record of `id` holding `length` zero bytes. */
function extraRecord(id: number, length: number): Uint8Array {
  const r = new Uint8Array(4 + length);
  const v = new DataView(r.buffer);
  v.setUint16(0, id, true);
  v.setUint16(2, length, true);
  return r;
}

async function buildZip(members: Member[], options: { centralOrder?: number[] } = {}) {
  const parts: Uint8Array[] = [];
  const records: Uint8Array[] = [];
  const headerAt: number[] = [];
  const dataAt: number[] = [];
  const stored: Uint8Array[] = [];
  let at = 0;
  for (const m of members) {
    const data = m.deflate ? await deflateRaw(m.body) : m.body;
    stored.push(data);
    const localName = enc.encode(m.local?.name ?? m.name);
    const [compressed, size] = m.local?.sizes ?? [data.byteLength, m.body.byteLength];
    const z64 = m.zip64 ? new Uint8Array(4 + (m.zip64Length ?? 16)) : new Uint8Array(0);
    if (m.zip64) {
      const v = new DataView(z64.buffer);
      v.setUint16(0, 1, true);
      v.setUint16(2, m.zip64Length ?? 16, true);
      if (z64.byteLength >= 20) {
        v.setBigUint64(4, BigInt(size), true);
        v.setBigUint64(12, BigInt(compressed), true);
      }
    }
    const extra = new Uint8Array([...(m.extra ?? []), ...z64]);
    const header = new Uint8Array(30 + localName.byteLength + extra.byteLength);
    const h = new DataView(header.buffer);
    h.setUint32(0, 0x04034b50, true);
    h.setUint16(4, 20, true);
    h.setUint16(6, m.local?.flags ?? m.flags ?? 0, true);
    h.setUint16(8, m.local?.method ?? (m.deflate ? 8 : 0), true);
    h.setUint32(14, m.crc ?? crc32(m.body), true);
    h.setUint32(18, m.zip64 ? 0xffffffff : compressed, true);
    h.setUint32(22, m.zip64 ? 0xffffffff : size, true);
    h.setUint16(26, localName.byteLength, true);
    h.setUint16(28, extra.byteLength, true);
    header.set(localName, 30);
    header.set(extra, 30 + localName.byteLength);
    const name = enc.encode(m.name);
    const [cc, cs] = m.sizes ?? [data.byteLength, m.body.byteLength];
    const record = new Uint8Array(46 + name.byteLength);
    const c = new DataView(record.buffer);
    c.setUint32(0, 0x02014b50, true);
    c.setUint16(4, 20, true);
    c.setUint16(6, 20, true);
    c.setUint16(8, m.flags ?? 0, true);
    c.setUint16(10, m.deflate ? 8 : 0, true);
    c.setUint32(16, m.crc ?? crc32(m.body), true);
    c.setUint32(20, cc, true);
    c.setUint32(24, cs, true);
    c.setUint16(28, name.byteLength, true);
    c.setUint32(42, m.offset ?? at, true);
    record.set(name, 46);
    records.push(record);
    parts.push(header, data);
    headerAt.push(at);
    dataAt.push(at + header.byteLength);
    at += header.byteLength + data.byteLength;
  }
  const order = options.centralOrder ?? members.map((_, i) => i);
  const central = order.map((i) => records[i] as Uint8Array);
  const bytes = concatZip(parts, central, members.length, at);
  return { bytes, headerAt, dataAt, stored, directory: at };
}

/**
 * A ranged reader over `bytes` that fails the test on any read outside the archive, or one that starts
 * at its end (a Range an HTTP server answers with 416).
 */
function reader(bytes: Uint8Array) {
  const outside: [number, number][] = [];
  const reads: [number, number][] = [];
  const read = async (offset: number, length: number) => {
    reads.push([offset, length]);
    if (!(Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length >= 0))
      outside.push([offset, length]);
    else if (offset + length > bytes.byteLength || offset >= bytes.byteLength) outside.push([offset, length]);
    return bytes.slice(offset, offset + length);
  };
  return { read, outside, reads };
}

async function open(bytes: Uint8Array, limits?: ZipLimits) {
  const r = reader(bytes);
  try {
    return await readZip(r.read, bytes.byteLength, "m.pt", limits);
  } finally {
    expect(r.outside).toEqual([]);
  }
}

async function refusal(bytes: Uint8Array, limits?: ZipLimits): Promise<OciError> {
  try {
    await open(bytes, limits);
  } catch (e) {
    if (isOciError(e)) return e;
    throw e;
  }
  throw new Error("accepted");
}
async function refused(bytes: Uint8Array, reason: string, limits?: ZipLimits) {
  const error = await refusal(bytes, limits);
  expect([error.code, error.message]).toEqual(["INVALID_CHECKPOINT", `Cannot read m.pt: ${reason}`]);
}
async function readRefused(read: Promise<unknown>, message: string) {
  const error = await read.then(
    () => new Error("accepted"),
    (e: unknown) => e,
  );
  expect(isOciError(error) ? [error.code, error.message] : error).toEqual(["INVALID_CHECKPOINT", message]);
}

describe("readZip lists and reads an honest archive exactly", () => {
  it("stored and deflated entries: name, method, sizes, where the data starts, and every byte", async () => {
    const a = pattern(1000);
    const b = pattern(3000);
    const zip = await buildZip([
      { name: "archive/data.pkl", body: a },
      { name: "archive/data/0", body: b, deflate: true },
      { name: "dir/", body: new Uint8Array(0) },
    ]);
    const entries = await open(zip.bytes);
    expect(entries.map(({ read: _, ...e }) => e)).toEqual([
      { name: "archive/data.pkl", method: 0, compressedSize: 1000, size: 1000, dataOffset: zip.dataAt[0] },
      {
        name: "archive/data/0",
        method: 8,
        compressedSize: zip.stored[1]?.byteLength,
        size: 3000,
        dataOffset: zip.dataAt[1],
      },
    ]);
    const [stored, deflated] = entries as [(typeof entries)[0], (typeof entries)[0]];
    expect(await stored.read()).toEqual(a);
    expect(await stored.read(10, 20)).toEqual(a.subarray(10, 20));
    expect(await deflated.read()).toEqual(b);
    expect(await deflated.read(2, 5)).toEqual(b.subarray(2, 5));
    expect(await deflated.read(0, 0)).toEqual(new Uint8Array(0));
    expect(await deflated.read(3000, 3000)).toEqual(new Uint8Array(0));
    expect(await deflated.read(2999)).toEqual(b.subarray(2999));
  });

  it("windows of a deflated entry that inflates in many chunks, without inflating past them", async () => {
    const body = new Uint8Array([...pattern(300_000), ...noise(300_000)]);
    const zip = await buildZip([{ name: "big", body, deflate: true }]);
    const r = reader(zip.bytes);
    const [entry] = (await readZip(r.read, zip.bytes.byteLength, "m.pt")) as [
      Awaited<ReturnType<typeof open>>[0],
    ];
    for (const [from, to] of [
      [0, 1],
      [65_530, 65_550],
      [1000, 200_000],
      [300_000 - 7, 300_000 + 9],
      [body.byteLength - 5, body.byteLength],
    ] as const)
      expect(equal(await entry.read(from, to), body.subarray(from, to)), `${from}-${to}`).toBe(true);
    expect(equal(await entry.read(), body)).toBe(true); // equal(): toEqual takes seconds on 600 KB
    expect(r.outside).toEqual([]);
  });

  it("a central directory in another order than the archive", async () => {
    const zip = await buildZip(
      [
        { name: "a", body: pattern(10) },
        { name: "b", body: pattern(20) },
        { name: "c", body: pattern(30) },
      ],
      { centralOrder: [2, 0, 1] },
    );
    expect((await open(zip.bytes)).map((e) => e.name)).toEqual(["c", "a", "b"]);
  });

  it("a long name, a local header with long extra fields, zip64 sizes after another record", async () => {
    const name = `archive/${"n".repeat(300)}`;
    const zip = await buildZip([
      { name, body: pattern(40) },
      { name: "x", body: pattern(50), extra: extraRecord(0x5455, 400) },
      { name: "y", body: pattern(60), deflate: true, extra: extraRecord(0x5455, 5), zip64: true },
      { name: "z", body: pattern(70), extra: extraRecord(0xcafe, 300), zip64: true },
    ]);
    const entries = await open(zip.bytes);
    expect(entries.map((e) => [e.name, e.size, e.dataOffset])).toEqual([
      [name, 40, zip.dataAt[0]],
      ["x", 50, zip.dataAt[1]],
      ["y", 60, zip.dataAt[2]],
      ["z", 70, zip.dataAt[3]],
    ]);
    for (const [i, e] of entries.entries())
      expect(await e.read()).toEqual(pattern([40, 50, 60, 70][i] as number));
  });

  it("zip64 sizes where only one of a local header's sizes is 0xffffffff; a zip64 record where neither is, unread", async () => {
    const body = pattern(16);
    // The header's uncompressed size (at 22), then its compressed size (at 18), back to 16: the other
    // one alone says zip64.
    for (const field of [22, 18]) {
      const zip = await buildZip([{ name: "a", body, zip64: true }]);
      new DataView(zip.bytes.buffer).setUint32(field, 16, true);
      const [entry] = await open(zip.bytes);
      expect([entry?.compressedSize, entry?.size, await entry?.read()]).toEqual([16, 16, body]);
    }
    // a record with id 1 (its sizes 0) in a header whose own sizes hold: the header's sizes stand
    const plain = await buildZip([{ name: "a", body, extra: extraRecord(1, 16) }]);
    const [entry] = await open(plain.bytes);
    expect([entry?.size, await entry?.read()]).toEqual([16, body]);
  });

  it("a local header in one ranged read, and a second only for an extra field over 256 bytes", async () => {
    const long = `archive/data/${"n".repeat(27)}`;
    const zip = await buildZip([
      { name: "x", body: pattern(50) }, // at 0, where zip.js itself looks for a split archive's signature
      { name: "y", body: pattern(60), extra: extraRecord(0x5455, 232), zip64: true }, // 256 bytes of extra
      { name: "z", body: pattern(70), extra: extraRecord(0x5455, 233), zip64: true }, // 257
      { name: long, body: pattern(80), extra: extraRecord(0xcafe, 280), zip64: true }, // 304
    ]);
    const r = reader(zip.bytes);
    const entries = await readZip(r.read, zip.bytes.byteLength, "m.pt");
    expect(entries.map((e) => [e.name, e.size, e.dataOffset])).toEqual([
      ["x", 50, zip.dataAt[0]],
      ["y", 60, zip.dataAt[1]],
      ["z", 70, zip.dataAt[2]],
      [long, 80, zip.dataAt[3]],
    ]);
    const headerReads = zip.headerAt.map(
      (at, i) => r.reads.filter(([offset]) => offset >= at && offset < (zip.dataAt[i] as number)).length,
    );
    expect(headerReads.slice(1)).toEqual([1, 2, 2]);
    expect(r.outside).toEqual([]);
  });

  it("a local header that leaves its sizes to a data descriptor (flag 3) is not held to them", async () => {
    const zip = await buildZip([{ name: "a", body: pattern(100), flags: 8, local: { sizes: [0, 0] } }]);
    const [entry] = await open(zip.bytes);
    expect(await entry?.read()).toEqual(pattern(100));
  });

  it("entry sizes at the limits: maxEntryBytes, and a ratio of exactly maxRatio past 16 MiB", async () => {
    const ten = await buildZip([{ name: "a", body: pattern(10) }]);
    expect(await open(ten.bytes, { maxEntryBytes: 10 })).toHaveLength(1);
    await refused(ten.bytes, "entry a declares 10 bytes, over the limit", { maxEntryBytes: 9 });
    const body = noise(17_000);
    const compressed = (await deflateRaw(body)).byteLength;
    for (const [ratio, limits] of [
      [1000, undefined],
      [1024, { maxRatio: 1024 }],
    ] as const) {
      const at = await buildZip([
        {
          name: "a",
          body,
          deflate: true,
          sizes: [compressed, compressed * ratio],
          local: { sizes: [compressed, compressed * ratio] },
        },
      ]);
      expect((await open(at.bytes, limits))[0]?.size).toBe(compressed * ratio);
    }
  });
});

describe("readZip refuses what two zip readers could read differently, and zip bombs", () => {
  it("bytes that are not a zip, with what zip.js made of them as the cause", async () => {
    await refused(noise(200), "it is not a readable zip archive");
    expect((await refusal(noise(200))).cause).toBeInstanceOf(Error);
  });

  it("a zip64 end record that its locator puts at or past the end of the archive", async () => {
    for (const past of [0, 100]) {
      const locator = new Uint8Array(20);
      const l = new DataView(locator.buffer);
      l.setUint32(0, 0x07064b50, true);
      l.setBigUint64(8, BigInt(20 + 22 + past), true);
      l.setUint32(16, 1, true);
      const end = new Uint8Array(22);
      const e = new DataView(end.buffer);
      e.setUint32(0, 0x06054b50, true);
      e.setUint16(8, 0xffff, true);
      e.setUint16(10, 0xffff, true);
      e.setUint32(12, 0xffffffff, true);
      e.setUint32(16, 0xffffffff, true);
      await refused(new Uint8Array([...locator, ...end]), "it is not a readable zip archive");
    }
  });

  it("a name given twice", async () => {
    const zip = await buildZip([
      { name: "a", body: pattern(4) },
      { name: "a", body: pattern(8) },
    ]);
    await refused(zip.bytes, "it holds a twice");
  });

  it("an encrypted entry", async () => {
    await refused(
      (await buildZip([{ name: "a", body: pattern(4), flags: 1 }])).bytes,
      "entry a is encrypted",
    );
  });

  it("a central record that points at no local header, or outside the archive", async () => {
    const reason = "entry b points outside the archive or at no local header";
    const two = [
      { name: "a", body: pattern(64) },
      { name: "b", body: pattern(8) },
    ];
    await refused((await buildZip([two[0] as Member, { ...(two[1] as Member), offset: 40 }])).bytes, reason);
    const size = (await buildZip(two)).bytes.byteLength;
    for (const offset of [size - 29, size - 10, size, size + 5, 0xfffffff0])
      await refused((await buildZip([two[0] as Member, { ...(two[1] as Member), offset }])).bytes, reason);
  });

  it("a local header without its signature", async () => {
    const zip = await buildZip([{ name: "a", body: pattern(16) }]);
    new DataView(zip.bytes.buffer).setUint32(0, 0x08074b50, true); // a data descriptor's
    await refused(zip.bytes, "entry a points outside the archive or at no local header");
  });

  it("a local header in the archive's comment, its last 30 bytes: it has no room for data", async () => {
    // An entry with an empty name and no data, its central record first, its local header last.
    const record = new Uint8Array(46);
    const c = new DataView(record.buffer);
    c.setUint32(0, 0x02014b50, true);
    c.setUint16(4, 20, true);
    c.setUint16(6, 20, true);
    c.setUint32(42, 46 + 22, true);
    const header = new Uint8Array(30);
    const h = new DataView(header.buffer);
    h.setUint32(0, 0x04034b50, true);
    h.setUint16(4, 20, true);
    const zip = concatZip([], [record], 1, 0);
    new DataView(zip.buffer).setUint16(zip.byteLength - 2, 30, true); // the end record's comment length
    await refused(
      new Uint8Array([...zip, ...header]),
      "entry  runs past its data into the central directory or the end of the archive",
    );
  });

  it("a local header whose name, method or sizes disagree with the central directory", async () => {
    const reason = "entry a's local header disagrees with the central directory";
    const body = pattern(16);
    for (const local of [
      { name: "b" },
      { name: "ab" },
      { method: 8 },
      { sizes: [16, 17] as [number, number] },
      { sizes: [17, 16] as [number, number] },
    ])
      await refused(
        (
          await buildZip([
            { name: "a", body, local },
            { name: "z", body },
          ])
        ).bytes,
        reason,
      );
    // a local name that is a prefix of the central one, or differs in one byte of two
    for (const name of ["a", "ac"])
      await refused(
        (
          await buildZip([
            { name: "ab", body, local: { name } },
            { name: "z", body },
          ])
        ).bytes,
        reason.replace("entry a's", "entry ab's"),
      );
    // zip64 sizes that disagree, or an extra record too short to hold them
    await refused(
      (
        await buildZip([
          { name: "a", body, zip64: true, local: { sizes: [16, 15] } },
          { name: "z", body },
        ])
      ).bytes,
      reason,
    );
    await refused(
      (
        await buildZip([
          { name: "a", body, zip64: true, zip64Length: 15 },
          { name: "z", body },
        ])
      ).bytes,
      reason,
    );
  });

  it("a local header whose extra field runs past the end of the archive, or to it", async () => {
    const zip = await buildZip([{ name: "a", body: pattern(16), zip64: true }]);
    const size = zip.bytes.byteLength;
    for (const [x, reason] of [
      [0xfff0, "entry a points outside the archive or at no local header"],
      [size - 31 + 1, "entry a points outside the archive or at no local header"],
      [size - 31, "entry a runs past its data into the central directory or the end of the archive"],
    ] as const) {
      const bytes = zip.bytes.slice();
      new DataView(bytes.buffer).setUint16(28, x, true);
      await refused(bytes, reason);
    }
  });

  it("a stored entry whose two sizes differ", async () => {
    const body = pattern(10);
    await refused(
      (await buildZip([{ name: "a", body, sizes: [10, 20], local: { sizes: [10, 20] } }])).bytes,
      "entry a is stored (not compressed) but declares 20 bytes for 10 stored",
    );
  });

  it("data that runs into the next entry, the central directory or past the end", async () => {
    const body = pattern(100);
    const next = await buildZip([
      { name: "a", body, sizes: [131, 131], local: { sizes: [131, 131] } },
      { name: "b", body },
    ]);
    await refused(next.bytes, "entries a and b overlap");
    const reversed = await buildZip(
      [
        { name: "a", body, sizes: [131, 131], local: { sizes: [131, 131] } },
        { name: "b", body },
      ],
      { centralOrder: [1, 0] },
    );
    await refused(reversed.bytes, "entries a and b overlap");
    await refused(
      (await buildZip([{ name: "a", body, sizes: [101, 101], local: { sizes: [101, 101] } }])).bytes,
      "entry a runs past its data into the central directory or the end of the archive",
    );
  });

  it("an entry that would inflate more than maxRatio times, past 16 MiB (a zip bomb)", async () => {
    const body = noise(17_000);
    const compressed = (await deflateRaw(body)).byteLength;
    const size = compressed * 1000 + 1;
    await refused(
      (
        await buildZip([
          { name: "a", body, deflate: true, sizes: [compressed, size], local: { sizes: [compressed, size] } },
        ])
      ).bytes,
      `entry a would inflate ${Math.round(size / compressed)}× (a zip bomb?)`,
    );
    await refused(
      (
        await buildZip([
          {
            name: "a",
            body,
            deflate: true,
            sizes: [compressed, compressed * 1024 + 1],
            local: { sizes: [compressed, compressed * 1024 + 1] },
          },
        ])
      ).bytes,
      "entry a would inflate 1024× (a zip bomb?)",
      { maxRatio: 1024 },
    );
    const empty = 16 * 1024 * 1024 + 1;
    await refused(
      (
        await buildZip([
          {
            name: "a",
            body: new Uint8Array(0),
            deflate: true,
            sizes: [0, empty],
            local: { sizes: [0, empty] },
          },
        ])
      ).bytes,
      `entry a would inflate ${empty}× (a zip bomb?)`,
    );
    // 16 MiB exactly is not held to the ratio
    const sixteen = 16 * 1024 * 1024;
    const ok = await buildZip([
      { name: "a", body: pattern(10), deflate: true, sizes: [0, sixteen], local: { sizes: [0, sixteen] } },
    ]);
    expect((await open(ok.bytes))[0]?.size).toBe(sixteen);
  });
});

describe("reading an entry", () => {
  it("refuses a range outside the entry", async () => {
    const [entry] = await open((await buildZip([{ name: "a", body: pattern(10) }])).bytes);
    const read = entry?.read as (from?: number, to?: number) => Promise<Uint8Array>;
    for (const [from, to] of [
      [-1, 5],
      [0, 11],
      [6, 5],
      [0.5, 5],
      [0, Number.POSITIVE_INFINITY],
      [0, 2 ** 53],
    ] as const)
      await readRefused(
        read(from, to),
        `Cannot read m.pt entry a: bytes [${from}, ${to}) are outside its 10`,
      );
    expect(await read(10)).toEqual(new Uint8Array(0));
  });

  it("refuses a deflated entry that inflates past its declared size, or to other bytes than its CRC's", async () => {
    const body = pattern(1000);
    const compressed = (await deflateRaw(body)).byteLength;
    const lie = await buildZip([
      { name: "a", body, deflate: true, sizes: [compressed, 999], local: { sizes: [compressed, 999] } },
    ]);
    const [entry] = await open(lie.bytes);
    await readRefused(
      entry?.read() as Promise<Uint8Array>,
      "Cannot read m.pt entry a: it does not decompress cleanly",
    );
    const crc = await buildZip([{ name: "a", body, deflate: true, crc: 1234 }]);
    const [bad] = await open(crc.bytes);
    await readRefused(
      bad?.read() as Promise<Uint8Array>,
      "Cannot read m.pt entry a: it does not decompress cleanly",
    );
    const garbage = await buildZip([
      { name: "a", body: noise(100), sizes: [100, 500], local: { sizes: [100, 500] } },
    ]);
    const raw = new DataView(garbage.bytes.buffer);
    raw.setUint16(8, 8, true); // local method: deflate
    raw.setUint16((garbage.directory as number) + 10, 8, true); // central method: deflate
    const [junk] = await open(garbage.bytes);
    await readRefused(
      junk?.read() as Promise<Uint8Array>,
      "Cannot read m.pt entry a: it does not decompress cleanly",
    );
    // what zip.js found wrong stays attached
    const cause = await (junk as { read(): Promise<Uint8Array> }).read().catch((e: OciError) => e.cause);
    expect(cause).toBeInstanceOf(Error);
  });

  it("refuses an entry that inflates past a declared size at the end of a chunk zip.js hands over", async () => {
    // zip.js hands inflated bytes over 256 KiB at a time: the declared size is two chunks, the data three.
    const chunk = 256 * 1024;
    const body = pattern(3 * chunk);
    const compressed = (await deflateRaw(body)).byteLength;
    const lie = await buildZip([
      {
        name: "a",
        body,
        deflate: true,
        sizes: [compressed, 2 * chunk],
        local: { sizes: [compressed, 2 * chunk] },
      },
    ]);
    const [entry] = (await open(lie.bytes)) as [Awaited<ReturnType<typeof open>>[0]];
    await readRefused(entry.read(), "Cannot read m.pt entry a: it does not decompress cleanly");
    await readRefused(
      entry.read(chunk, 2 * chunk),
      "Cannot read m.pt entry a: it does not decompress cleanly",
    );
  });

  it("a window stops inflating once it has its bytes: a corrupt tail fails only what reads it", async () => {
    const chunk = 256 * 1024;
    const body = pattern(2 * chunk + 1000);
    const zip = await buildZip([{ name: "a", body, deflate: true }]);
    const data = zip.dataAt[0] as number;
    const compressed = zip.stored[0]?.byteLength as number;
    zip.bytes.fill(0xff, data + compressed - 40, data + compressed - 5);
    const [entry] = (await open(zip.bytes)) as [Awaited<ReturnType<typeof open>>[0]];
    // up to the end of the first chunk zip.js hands over, and no further
    for (const [from, to] of [
      [0, 1],
      [1000, 2000],
      [5, chunk],
      [0, chunk],
    ] as const)
      expect(await entry.read(from, to)).toEqual(body.subarray(from, to));
    await readRefused(entry.read(), "Cannot read m.pt entry a: it does not decompress cleanly");
  });

  it("a stored entry's window is read from the store as it is: those bytes and no others", async () => {
    const body = noise(5000);
    const zip = await buildZip([{ name: "a", body }]);
    const r = reader(zip.bytes);
    const [entry] = (await readZip(r.read, zip.bytes.byteLength, "m.pt")) as [
      Awaited<ReturnType<typeof open>>[0],
    ];
    r.reads.length = 0;
    expect(await entry.read(1000, 1200)).toEqual(body.subarray(1000, 1200));
    expect(r.reads).toEqual([[(zip.dataAt[0] as number) + 1000, 200]]);
  });

  it("a store's error while an entry inflates comes through as it is", async () => {
    const zip = await buildZip([{ name: "a", body: pattern(5000), deflate: true }]);
    const data = zip.dataAt[0] as number;
    const failure = new OciError("STORAGE", "Cannot read the blob: it went away");
    const read = async (offset: number, length: number) => {
      if (offset === data) throw failure;
      return zip.bytes.slice(offset, offset + length);
    };
    const [entry] = (await readZip(read, zip.bytes.byteLength, "m.pt")) as [
      Awaited<ReturnType<typeof open>>[0],
    ];
    await expect(entry.read()).rejects.toBe(failure);
  });

  it("a failed load of zip.js is tried again by the next read", async () => {
    vi.resetModules();
    let failures = 1;
    vi.doMock("@zip.js/zip.js/index-native.js", async (importOriginal) => {
      if (failures-- > 0) throw new Error("zip.js did not load");
      return await importOriginal();
    });
    try {
      const fresh = await import("../../src/tensors/zip.js");
      const zip = await buildZip([{ name: "a", body: pattern(10) }]);
      const r = reader(zip.bytes);
      const first = await fresh.readZip(r.read, zip.bytes.byteLength, "m.pt").then(
        () => new Error("accepted"),
        (e: Error) => e,
      );
      // (Vitest wraps what a mock's factory throws)
      expect(String(first.cause ?? first)).toContain("zip.js did not load");
      const entries = await fresh.readZip(r.read, zip.bytes.byteLength, "m.pt");
      expect(await entries[0]?.read()).toEqual(pattern(10));
    } finally {
      vi.doUnmock("@zip.js/zip.js/index-native.js");
    }
  });

  it("a store's read error comes through as it is", async () => {
    const zip = await buildZip([{ name: "a", body: pattern(1000) }]);
    const failure = new Error("network down");
    const read = async (offset: number, length: number) => {
      if (offset === 0 && length === 287) throw failure; // the local header, not zip.js's look at the first signature
      return zip.bytes.slice(offset, offset + length);
    };
    await expect(readZip(read, zip.bytes.byteLength, "m.pt")).rejects.toBe(failure);
  });

  it("a store that returns less than asked for a local header: no local header", async () => {
    const zip = await buildZip([{ name: "a", body: pattern(1000) }]);
    const read = async (offset: number, length: number) =>
      zip.bytes.slice(offset, offset + (offset === 0 && length === 287 ? 29 : length));
    await readRefused(
      readZip(read, zip.bytes.byteLength, "m.pt"),
      "Cannot read m.pt: entry a points outside the archive or at no local header",
    );
  });
});
