import { isOciError } from "../../index.js";
import type { CliIo, Command } from "./command.js";
import { gcCommand } from "./gc.js";
import { inspectCommand } from "./inspect.js";
import { lsCommand } from "./ls.js";
import { packCommand } from "./pack.js";
import { proxyCommand } from "./proxy.js";
import { pullCommand } from "./pull.js";
import { pushCommand } from "./push.js";
import { rmCommand } from "./rm.js";
import { serveCommand } from "./serve.js";
import { tensorsCommand } from "./tensors.js";
import { verifyCommand } from "./verify.js";

/** Every command under its name, in the order the help lists them. */
const COMMANDS: Record<string, Command> = {
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

const USAGE = `Usage: oci-model <command> [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, { synopsis, summary }]) => `  ${`${name} ${synopsis}`.trimEnd().padEnd(20)}  ${summary}`)
  .join("\n")}

Run "oci-model <command> --help" for a command's options.`;

/** Runs the CLI: data on stdout, diagnostics on stderr; exit 1 with the error code on failure. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    io.stdout(`${USAGE}\n`);
    return name === undefined ? 1 : 0;
  }
  // own properties only: "constructor" or "toString" is an unknown command, not Object's
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    io.stderr(`oci-model: unknown command "${name}"\n${USAGE}\n`);
    return 1;
  }
  try {
    return await command.main(args, io);
  } catch (error) {
    io.stderr(
      isOciError(error)
        ? `oci-model ${name}: ${error.code}: ${error.message}\n`
        : `oci-model ${name}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    return 1;
  }
}
