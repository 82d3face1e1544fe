import { homedir } from "node:os";
import { join } from "node:path";
import type { Store } from "../../index.js";
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
