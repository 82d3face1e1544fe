import { OciError } from "../errors.js";

/** The digest algorithms of the OCI image spec. */
export type DigestAlgorithm = "sha256" | "sha512";

/**
 * An incremental hash. `update` may return a promise (stream-backed hashers); callers await it.
 * Hashers that can pause and resume across sessions implement `save`/`load`.
 */
export interface Hasher {
  /** Hashes the next bytes. Await what it returns before the next call. */
  update(data: Uint8Array): void | Promise<void>;
  /** Finishes the hash and returns it as lowercase hex. The hasher is unusable afterwards. */
  digest(): Promise<string>;
  /** Serialises the state after the bytes hashed so far (for resuming a download later). */
  save?(): Uint8Array;
  /** Restores a state made by `save` of a hasher of the same kind. */
  load?(state: Uint8Array): void;
}

/** Makes a fresh hasher for an algorithm. Inject one to replace the default (e.g. `node:crypto`). */
export type CreateHasher = (algorithm: DigestAlgorithm) => Promise<Hasher>;

const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

/** Splits `sha256:<hex>` into its parts; `DIGEST_MISMATCH`-free `INVALID_ARGUMENT` when unsupported. */
export function parseDigest(digest: string): { algorithm: DigestAlgorithm; hex: string } {
  const colon = digest.indexOf(":");
  const algorithm = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  if (algorithm !== "sha256" && algorithm !== "sha512") {
    throw new OciError(
      "INVALID_ARGUMENT",
      `Cannot verify digest "${digest}": only sha256 and sha512 are supported`,
    );
  }
  if (hex.length !== HEX_LENGTH[algorithm] || !/^[0-9a-f]+$/.test(hex)) {
    throw new OciError(
      "INVALID_ARGUMENT",
      `Cannot verify digest "${digest}": it is not ${HEX_LENGTH[algorithm]} lowercase hex digits`,
    );
  }
  return { algorithm, hex };
}

/** Lowercase hex of some bytes. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** Hashes a whole byte array and returns `algorithm:hex`. */
export async function digestBytes(
  bytes: Uint8Array,
  createHasher: CreateHasher,
  algorithm: DigestAlgorithm = "sha256",
): Promise<string> {
  const hasher = await createHasher(algorithm);
  await hasher.update(bytes);
  return `${algorithm}:${await hasher.digest()}`;
}

/** Hashes a whole stream and returns `algorithm:hex`. */
export async function digestStream(
  stream: ReadableStream<Uint8Array>,
  createHasher: CreateHasher,
  algorithm: DigestAlgorithm = "sha256",
): Promise<string> {
  const hasher = await createHasher(algorithm);
  for await (const chunk of stream) await hasher.update(chunk);
  return `${algorithm}:${await hasher.digest()}`;
}
