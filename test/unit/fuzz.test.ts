import fc from "fast-check";
import { packTar } from "modern-tar";
import { describe, expect, it } from "vitest";
import { walkTar } from "../../src/archive/tar.js";
import { isOciError, parseReference } from "../../src/index.js";
import { parseChallenges, parseHeader, parseManifest } from "../../src/internals.js";
import { readTorchPickle } from "../../src/tensors/pickle.js";
import { buildTensorIndex } from "../../src/tensors/tensor-index.js";
import { floats, memoryFile, npy, stateDict, torchFile, writeZip } from "../support/checkpoint-files.js";
import { writeSafetensors } from "../support/safetensors.js";

const SEED = 1127;
const RUNS = 3000;

/** The only thing a parser may throw on bad input is an OciError. */
function onlyOciErrors(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch (error) {
    if (isOciError(error)) return true;
    throw error;
  }
}

async function onlyOciErrorsAsync(fn: () => Promise<unknown>): Promise<boolean> {
  try {
    await fn();
    return true;
  } catch (error) {
    if (isOciError(error)) return true;
    throw error;
  }
}

/**
 * Checks a property as `fc.assert` does, as an assertion Vitest counts (every test must assert):
 * fails with fast-check's report of the smallest counterexample.
 */
function holds<T>(property: fc.IProperty<T>, params: fc.Parameters<T>): void;
function holds<T>(property: fc.IAsyncProperty<T>, params: fc.Parameters<T>): Promise<void>;
function holds<T>(
  property: fc.IProperty<T> | fc.IAsyncProperty<T>,
  params: fc.Parameters<T>,
): void | Promise<void> {
  const report = (details: fc.RunDetails<T>) =>
    expect(details.failed, fc.defaultReportMessage(details)).toBe(false);
  const details = fc.check(property as fc.IRawProperty<T>, params);
  return details instanceof Promise ? details.then(report) : report(details);
}

const referenceChars = fc.constantFrom(..."abcAZ09.-_/:@[]+ \0é".split(""));

describe("fuzzing: parsers refuse bad input only with OciError", () => {
  it("parseReference: refuses only with OciError, and whatever parses round-trips", () => {
    let parsed = 0;
    holds(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          fc.array(referenceChars, { maxLength: 80 }).map((a) => a.join("")),
          // Shaped like a reference, so that many parse and the round trip is exercised.
          fc
            .tuple(
              fc.constantFrom("", "localhost/", "localhost:5000/", "ghcr.io/", "docker.io/", "[::1]:5000/"),
              fc.array(fc.stringMatching(/^[a-z0-9]+([._-][a-z0-9]+)*$/), { minLength: 1, maxLength: 3 }),
              fc.option(fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}$/), { nil: undefined }),
              fc.option(fc.stringMatching(/^[0-9a-f]{64}$/), { nil: undefined }),
            )
            .map(
              ([host, path, tag, hex]) =>
                `${host}${path.join("/")}${tag ? `:${tag}` : ""}${hex ? `@sha256:${hex}` : ""}`,
            ),
        ),
        (s) => {
          let ref: ReturnType<typeof parseReference>;
          try {
            ref = parseReference(s);
          } catch (error) {
            if (isOciError(error)) return;
            throw error;
          }
          parsed++;
          // Outside the try: a canonical form that does not parse again fails here, whatever it throws.
          const again = parseReference(ref.toString());
          expect(again.toString()).toBe(ref.toString());
          expect([again.registry, again.repository, again.tag, again.digest]).toEqual([
            ref.registry,
            ref.repository,
            ref.tag,
            ref.digest,
          ]);
        },
      ),
      { seed: SEED, numRuns: RUNS },
    );
    // The round trip ran on a good share of the inputs, not on a handful.
    expect(parsed).toBeGreaterThan(RUNS / 4);
  });

  it("parseChallenges", () => {
    const pieces = fc.constantFrom(
      "Bearer ",
      "Basic ",
      'realm="',
      '"',
      ",",
      "=",
      "\\",
      "scope=",
      " ",
      "a",
      "x=y",
      '"a,b"',
    );
    holds(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 200 }),
          fc.array(pieces, { maxLength: 30 }).map((a) => a.join("")),
        ),
        (s) => onlyOciErrors(() => parseChallenges(s)),
      ),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it("parseManifest", () => {
    const json = fc.jsonValue({ maxDepth: 4 }).map((v) => new TextEncoder().encode(JSON.stringify(v)));
    holds(
      fc.property(fc.oneof(json, fc.uint8Array({ maxLength: 200 })), (bytes) =>
        onlyOciErrors(() => parseManifest(bytes)),
      ),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it("safetensors headers, random and mutated", () => {
    const valid = writeSafetensors([
      { name: "a", dtype: "F32", shape: [2, 3] },
      { name: "b", dtype: "BF16", shape: [4] },
    ]);
    const mutated = fc
      .tuple(fc.nat(valid.byteLength - 1), fc.integer({ min: 0, max: 255 }))
      .map(([at, value]) => {
        const copy = valid.slice();
        copy[at] = value;
        return copy;
      });
    holds(
      fc.property(fc.oneof(mutated, fc.uint8Array({ maxLength: 300 })), (file) =>
        onlyOciErrors(() => {
          const length =
            file.byteLength >= 8 ? new DataView(file.buffer, file.byteOffset).getUint32(0, true) : 0;
          parseHeader(file.subarray(8, 8 + length), file.byteLength);
        }),
      ),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it("tar extraction, mutated and truncated archives", async () => {
    const valid = await packTar([
      { header: { name: "config.json", size: 7, type: "file" }, body: '{"a":1}' },
      { header: { name: "dir/", size: 0, type: "directory" } },
      { header: { name: "dir/vocab.txt", size: 5, type: "file" }, body: "hello" },
    ]);
    const damaged = fc.oneof(
      fc.tuple(fc.nat(valid.byteLength - 1), fc.integer({ min: 0, max: 255 })).map(([at, value]) => {
        const copy = valid.slice();
        copy[at] = value;
        return copy;
      }),
      fc.nat(valid.byteLength).map((n) => valid.slice(0, n)),
      fc.uint8Array({ maxLength: 2048 }),
    );
    await holds(
      fc.asyncProperty(damaged, (bytes) =>
        onlyOciErrorsAsync(() =>
          walkTar(new Blob([bytes as Uint8Array<ArrayBuffer>]).stream(), {
            what: "fuzz.tar",
            maxEntries: 50,
            onFile: async (_, body) => void (await new Response(body).arrayBuffer()),
          }),
        ),
      ),
      { seed: SEED, numRuns: 1000 },
    );
  });

  /** `valid` with one byte set, several bytes set, or cut short. */
  const damage = (valid: Uint8Array) =>
    fc.oneof(
      fc
        .array(fc.tuple(fc.nat(valid.byteLength - 1), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 4,
        })
        .map((changes) => {
          const copy = valid.slice();
          for (const [at, value] of changes) copy[at] = value;
          return copy;
        }),
      fc.nat(valid.byteLength).map((n) => valid.slice(0, n)),
    );

  it("torch pickles, mutated and truncated", () => {
    const valid = stateDict({ a: { offset: 0, shape: [2] }, b: { offset: 2, shape: [2, 1] } }, 4).bytes();
    holds(
      fc.property(damage(valid), (bytes) => onlyOciErrors(() => readTorchPickle(bytes))),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it("zip checkpoints (.pt, stored and deflated .npz), mutated and truncated", async () => {
    const pt = await torchFile(
      stateDict({ a: { offset: 0, shape: [2] }, b: { offset: 2, shape: [2, 1] } }, 4).bytes(),
      floats(4),
    );
    const npz = (
      await writeZip([
        { name: "a.npy", body: npy([4], [1, 2, 3, 4]) },
        { name: "b.npy", body: npy([2], [5, 6]), deflate: true },
      ])
    ).bytes;
    const damaged = fc.oneof(
      damage(pt).map((bytes) => ({ path: "f.pt", bytes })),
      damage(npz).map((bytes) => ({ path: "f.npz", bytes })),
    );
    await holds(
      fc.asyncProperty(damaged, ({ path, bytes }) =>
        onlyOciErrorsAsync(() => buildTensorIndex([memoryFile(path, bytes)])),
      ),
      { seed: SEED, numRuns: 1000 },
    );
  });
});
