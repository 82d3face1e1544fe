import { homedir } from "node:os";
import { join } from "node:path";
import type { Store } from "../../index.js";
import { createFsStore } from "../fs-store.js";
import type { CliIo } from "./options.js";

export const STORE_FLAG = { store: { type: "string" } } as const;

/** `--store DIR`, else `$XDG_CACHE_HOME/oci-model`, else `~/.cache/oci-model`. */
export function storeDir(flag: string | undefined, io: CliIo): string {
  if (flag) return flag;
  const cache = io.env.XDG_CACHE_HOME || join(io.env.HOME || homedir(), ".cache");
  return join(cache, "oci-model");
}

export function openStore(flag: string | undefined, io: CliIo): Store {
  return createFsStore(storeDir(flag, io));
}
