import { type ParseArgsConfig, type ParseArgsOptionsConfig, parseArgs } from "node:util";
import { OciError } from "../../index.js";

/**
 * All a command reaches of the process it runs in. `cli.ts` builds the one from `process`; tests
 * hand in their own, so a command never touches `process` itself.
 */
export interface CliIo {
  /** Data: what a script reads (one JSON value with `--json`). */
  stdout: (text: string) => void;
  /** Diagnostics and progress, never data. */
  stderr: (text: string) => void;
  /** stderr when it is a terminal, for the progress bars; undefined for a file or a pipe (plain lines then). */
  terminal?: NodeJS.WriteStream | undefined;
  readStdin: () => Promise<string>;
  env: NodeJS.ProcessEnv;
  /**
   * Calls `listener` on the first of each of `signals`; returns what stops listening. While a
   * listener is on, that signal no longer ends the process, so a command listens only while it has
   * something to stop or close.
   */
  onSignal: (signals: readonly NodeJS.Signals[], listener: () => void) => () => void;
}

/** A command as `main` runs it. */
export interface Command {
  /** The arguments in the top-level help, e.g. `<reference>`; empty when it takes none. */
  synopsis: string;
  /** Its line in the top-level help. */
  summary: string;
  /** What `--help` prints, and what follows a mistake in the command line. */
  usage: string;
  /** Runs it on the arguments after its name: the exit code, or a throw that `main` reports. */
  main: (args: string[], io: CliIo) => Promise<number>;
}

/**
 * A mistake in the command line that `run` finds (a missing argument, a flag that needs another):
 * reported as `INVALID_ARGUMENT` followed by the command's usage. Write the message as
 * "Cannot <action>: <what to give>".
 */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

const HELP = { help: { type: "boolean", short: "h" } } as const;

/** The parsed flags `run` receives, typed from the options spec. */
export type Values<O extends ParseArgsOptionsConfig> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O & typeof HELP; allowPositionals: true; strict: true }>
>["values"];

/** What `defineCommand` takes. */
export interface CommandDefinition<O extends ParseArgsOptionsConfig> extends Omit<Command, "main"> {
  /** The flags, as `node:util` `parseArgs` takes them; `--help`/`-h` is added. */
  options: O;
  /** Whether it takes arguments besides flags; without, one is refused as a mistake. */
  allowPositionals?: boolean;
  /** The command itself, on parsed flags; a mistake it finds is a `UsageError`. */
  run: (values: Values<O>, positionals: string[], io: CliIo) => Promise<number>;
}

/**
 * A command from its usage, flags and body. The parsing, `--help` (the usage on stdout, exit 0)
 * and the mistakes in a command line (an unknown flag, a missing value, a stray argument, a
 * `UsageError`) are handled here, once: each becomes an `INVALID_ARGUMENT` `OciError` whose
 * message ends with the usage, which `main` prints on stderr with exit 1.
 */
export function defineCommand<O extends ParseArgsOptionsConfig>(definition: CommandDefinition<O>): Command {
  const { synopsis, summary, usage, options, allowPositionals = false, run } = definition;
  const invalid = (reason: string) => new OciError("INVALID_ARGUMENT", `${reason}\n${usage}`);
  return {
    synopsis,
    summary,
    usage,
    main: async (args, io) => {
      const config: ParseArgsConfig = {
        args,
        options: { ...options, ...HELP },
        allowPositionals,
        strict: true,
      };
      let parsed: ReturnType<typeof parseArgs<ParseArgsConfig>>;
      try {
        parsed = parseArgs(config);
      } catch (error) {
        // parseArgs throws a TypeError whose code names the mistake; Node's message says which flag
        if (isParseArgsError(error)) throw invalid(error.message);
        throw error;
      }
      if (parsed.values.help) {
        io.stdout(`${usage}\n`);
        return 0;
      }
      try {
        // the values are what `options` describes: parseArgs ran on it, strict
        return await run(parsed.values as Values<O>, parsed.positionals, io);
      } catch (error) {
        if (error instanceof UsageError) throw invalid(error.message);
        throw error;
      }
    },
  };
}

function isParseArgsError(error: unknown): error is TypeError {
  return error instanceof TypeError && "code" in error && String(error.code).startsWith("ERR_PARSE_ARGS");
}
