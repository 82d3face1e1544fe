import { isOciError } from "../../index.js";
import { INSPECT_USAGE, inspectCommand } from "./inspect.js";
import type { CliIo } from "./options.js";
import { PACK_USAGE, PUSH_USAGE, packCommand, pushCommand, SERVE_USAGE, serveCommand } from "./pack.js";
import { PROXY_USAGE, proxyCommand } from "./proxy.js";
import { PULL_USAGE, pullCommand } from "./pull.js";
import {
  GC_USAGE,
  gcCommand,
  LS_USAGE,
  lsCommand,
  RM_USAGE,
  rmCommand,
  VERIFY_USAGE,
  verifyCommand,
} from "./store-commands.js";
import { TENSORS_USAGE, tensorsCommand } from "./tensors.js";

const USAGE = `Usage: oci-model <command> [options]

Commands:
  pull <reference>      pull a model into the store, verified and resumable
  inspect <reference>   show a model's manifest, format and layers (no download)
  tensors <ref | file>  list tensors from the safetensors headers (no weights downloaded)
  ls                    list the models in the store
  rm <reference>        forget a model and free what no other model needs
  gc                    free blobs no model needs
  verify                re-hash every blob in the store; remove (and list) any that changed
  pack <dir> [ref]      pack a model folder (docker-v0.1, docker-v0.2, modelpack); push it or write a layout
  push <dir:tag> <ref>  push a model from an OCI layout to a registry
  serve <layout-dir>    serve an OCI layout read-only over the distribution API (local use)
  proxy --allow HOSTS   serve the registry proxy for browsers

Run "oci-model <command> --help" for a command's options.`;

const COMMANDS: Record<string, (args: string[], io: CliIo) => Promise<number>> = {
  pull: pullCommand,
  inspect: inspectCommand,
  tensors: tensorsCommand,
  ls: lsCommand,
  rm: rmCommand,
  gc: gcCommand,
  verify: verifyCommand,
  pack: packCommand,
  push: pushCommand,
  serve: serveCommand,
  proxy: proxyCommand,
};

const USAGES: Record<string, string> = {
  pull: PULL_USAGE,
  inspect: INSPECT_USAGE,
  tensors: TENSORS_USAGE,
  ls: LS_USAGE,
  rm: RM_USAGE,
  gc: GC_USAGE,
  verify: VERIFY_USAGE,
  pack: PACK_USAGE,
  push: PUSH_USAGE,
  serve: SERVE_USAGE,
  proxy: PROXY_USAGE,
};

/** Runs the CLI: data on stdout, diagnostics on stderr; exit 1 with the error code on failure. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    io.stdout(`${USAGE}\n`);
    return name === undefined ? 1 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    io.stderr(`oci-model: unknown command "${name}"\n${USAGE}\n`);
    return 1;
  }
  try {
    return await command(args, io);
  } catch (error) {
    if (isOciError(error)) {
      io.stderr(`oci-model ${name}: ${error.code}: ${error.message}\n`);
    } else if (
      error instanceof TypeError &&
      "code" in error &&
      String(error.code).startsWith("ERR_PARSE_ARGS")
    ) {
      io.stderr(`oci-model ${name}: INVALID_ARGUMENT: ${error.message}\n${USAGES[name] ?? USAGE}\n`);
    } else {
      io.stderr(
        `oci-model ${name}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
    }
    return 1;
  }
}
