import { OciError } from "../errors.js";
import type { CreateHasher, DigestAlgorithm, Hasher } from "./hasher.js";
import { toHex } from "./hasher.js";

// hash-wasm and @noble/hashes are imported through package.json "imports" (#hash-wasm, #noble-sha2): a
// bundle for Cloudflare Workers (the "workerd" condition, as wrangler builds) gets edge/omitted.js instead,
// an empty module. Workers cannot compile WebAssembly at run time and hash natively with
// crypto.DigestStream, which createDefaultHasher takes first there; without this the proxy Worker carried
// all of hash-wasm (272 KB) that it could never run.
function omitted(library: string): OciError {
  return new OciError(
    "INVALID_ARGUMENT",
    `Cannot hash with ${library}: this build (for Cloudflare Workers) leaves it out; use createDigestStreamHasher`,
  );
}

/** `hash-wasm`: fast in browsers, and the only web hasher whose state can be saved for resume. */
export const createWasmHasher: CreateHasher = async (algorithm) => {
  const { createSHA256, createSHA512 } = await import("#hash-wasm");
  if (typeof createSHA256 !== "function" || typeof createSHA512 !== "function") throw omitted("hash-wasm");
  const inner = await (algorithm === "sha256" ? createSHA256() : createSHA512());
  inner.init();
  return {
    update: (data) => void inner.update(data),
    digest: async () => inner.digest("hex"),
    save: () => inner.save(),
    load: (state) => void inner.load(state),
  };
};

/** `@noble/hashes`: pure JS, for places that cannot compile WASM (strict CSP, some edge runtimes). */
export const createJsHasher: CreateHasher = async (algorithm) => {
  const { sha256, sha512 } = await import("#noble-sha2");
  if (typeof sha256 !== "function" || typeof sha512 !== "function") throw omitted("@noble/hashes");
  const inner = (algorithm === "sha256" ? sha256 : sha512).create();
  return {
    update: (data) => void inner.update(data),
    digest: async () => toHex(inner.digest()),
  };
};

interface DigestStreamLike extends WritableStream<Uint8Array> {
  readonly digest: Promise<ArrayBuffer>;
}
type DigestStreamConstructor = new (algorithm: string) => DigestStreamLike;

function digestStreamConstructor(): DigestStreamConstructor | undefined {
  const candidate = (globalThis.crypto as { DigestStream?: unknown } | undefined)?.DigestStream;
  return typeof candidate === "function" ? (candidate as DigestStreamConstructor) : undefined;
}

/** `crypto.DigestStream` (Cloudflare Workers): native speed where WASM cannot be compiled at run time. */
export const createDigestStreamHasher: CreateHasher = async (algorithm) => {
  const DigestStream = digestStreamConstructor();
  if (!DigestStream) {
    throw new OciError(
      "INVALID_ARGUMENT",
      "Cannot hash with crypto.DigestStream: this runtime has none; use createDefaultHasher",
    );
  }
  const stream = new DigestStream(algorithm === "sha256" ? "SHA-256" : "SHA-512");
  const writer = stream.getWriter();
  return {
    update: (data) => writer.write(data),
    digest: async () => {
      await writer.close();
      return toHex(new Uint8Array(await stream.digest));
    },
  };
};

let wasmWorks: Promise<boolean> | undefined;
function canUseWasm(): Promise<boolean> {
  wasmWorks ??= createWasmHasher("sha256").then(
    () => true,
    () => false,
  );
  return wasmWorks;
}

/**
 * The default hasher, chosen by feature detection: `crypto.DigestStream` where it exists,
 * else `hash-wasm` where WASM compiles, else `@noble/hashes`.
 */
export const createDefaultHasher: CreateHasher = async (algorithm: DigestAlgorithm): Promise<Hasher> => {
  if (digestStreamConstructor()) return createDigestStreamHasher(algorithm);
  if (await canUseWasm()) return createWasmHasher(algorithm);
  return createJsHasher(algorithm);
};
