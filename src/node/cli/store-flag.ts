import { stat } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { createMemoryStore, OciError, type Store } from "../../index.js";
import { createFsStore } from "../fs-store.js";
import type { CliIo } from "./command.js";

/** `--store DIR`, which every command on the local store takes. */
export const STORE_FLAG = { store: { type: "string" } } as const;

/** `--store DIR`, else `$XDG_CACHE_HOME/oci-model`, else `~/.cache/oci-model`. */
export function storeDir(flag: string | undefined, io: CliIo): string {
  if (flag) return flag;
  const cache = io.env.XDG_CACHE_HOME || join(io.env.HOME || homedir(), ".cache");
  return join(cache, "oci-model");
}

/** The store `--store` names, or the default one; see `storeDir`. */
export function openStore(flag: string | undefined, io: CliIo): Store {
  return createFsStore(storeDir(flag, io));
}

/**
 * The store `ls`, `rm`, `gc` and `verify` work on, which they never create: a `--store` that names
 * no store (no `oci-layout` there, a typo) is NOT_FOUND; the default one, not made yet, reads as an
 * empty store.
 */
export async function openExistingStore(flag: string | undefined, io: CliIo, action: string): Promise<Store> {
  const dir = storeDir(flag, io);
  const layout = await stat(join(dir, "oci-layout")).catch(() => undefined);
  if (layout) return createFsStore(dir);
  if (!flag) return createMemoryStore();
  throw new OciError(
    "NOT_FOUND",
    `Cannot ${action}: there is no store at ${dir} (it holds no oci-layout file)`,
  );
}
