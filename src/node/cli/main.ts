import { isOciError } from "../../index.js";
import { INSPECT_USAGE, inspectCommand } from "./inspect.js";
import type { CliIo } from "./options.js";
import { PROXY_USAGE, proxyCommand } from "./proxy.js";

const USAGE = `Usage: oci-model <command> [options]

Commands:
  inspect <reference>   show a model's manifest, format and layers (no download)
  proxy --allow HOSTS   serve the registry proxy for browsers

Run "oci-model <command> --help" for a command's options.`;

const COMMANDS: Record<string, (args: string[], io: CliIo) => Promise<number>> = {
  inspect: inspectCommand,
  proxy: proxyCommand,
};

const USAGES: Record<string, string> = { inspect: INSPECT_USAGE, proxy: PROXY_USAGE };

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
