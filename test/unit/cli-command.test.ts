import { mkdtemp, rm, stat } from "node:fs/promises";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { isOciError, OciError } from "../../src/index.js";
import { type CliIo, defineCommand, UsageError } from "../../src/node/cli/command.js";
import { main } from "../../src/node/cli/main.js";

/** A CliIo that records what a command writes and raises signals on demand, as `process.once` would. */
function fakeIo() {
  const out = { stdout: "", stderr: "" };
  const listeners = new Map<NodeJS.Signals, Set<() => void>>();
  const io: CliIo = {
    stdout: (s) => {
      out.stdout += s;
    },
    stderr: (s) => {
      out.stderr += s;
    },
    readStdin: async () => "",
    env: { HOME: "/nonexistent" },
    onSignal: (signals, listener) => {
      for (const s of signals) listeners.set(s, (listeners.get(s) ?? new Set()).add(listener));
      return () => {
        for (const s of signals) listeners.get(s)?.delete(listener);
      };
    },
  };
  const raise = (signal: NodeJS.Signals) => {
    for (const listener of listeners.get(signal) ?? []) {
      listeners.get(signal)?.delete(listener);
      listener();
    }
  };
  const listening = () => [...listeners.values()].reduce((n, set) => n + set.size, 0);
  return { io, out, raise, listening };
}

const USAGE = "Usage: oci-model demo <thing> [--json] [--name N]\n\nDoes a thing.";

type Run = (values: object, positionals: string[], io: CliIo) => Promise<number>;

function demo(body: Run = async () => 7, allowPositionals = true) {
  const run = vi.fn(body);
  const command = defineCommand({
    synopsis: "<thing>",
    summary: "does a thing",
    usage: USAGE,
    options: { json: { type: "boolean" }, name: { type: "string", short: "n" } },
    allowPositionals,
    run,
  });
  return { command, run };
}

async function refusal(promise: Promise<unknown>): Promise<OciError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isOciError(error)) throw new Error(`expected an OciError, got ${String(error)}`);
  return error;
}

describe("defineCommand", () => {
  it("keeps the synopsis, summary and usage for main's help", () => {
    const { command } = demo();
    expect(command).toMatchObject({ synopsis: "<thing>", summary: "does a thing", usage: USAGE });
  });

  it("hands run the parsed flags and arguments, and returns its exit code", async () => {
    const { command, run } = demo();
    const { io } = fakeIo();
    expect(await command.main(["a", "--json", "-n", "x", "b"], io)).toBe(7);
    expect(run).toHaveBeenCalledTimes(1);
    const [values, positionals, given] = run.mock.calls[0] ?? [];
    expect(values).toEqual({ json: true, name: "x" });
    expect(positionals).toEqual(["a", "b"]);
    expect(given).toBe(io);
  });

  it.each(["--help", "-h"])(
    "answers %s with the usage on stdout and exit 0, without running",
    async (flag) => {
      const { command, run } = demo();
      const { io, out } = fakeIo();
      expect(await command.main(["a", flag], io)).toBe(0);
      expect(out).toEqual({ stdout: `${USAGE}\n`, stderr: "" });
      expect(run).not.toHaveBeenCalled();
    },
  );

  it.each([
    ["an unknown flag", ["--bogus"], /^Unknown option '--bogus'/],
    ["an unknown short flag", ["-x"], /^Unknown option '-x'/],
    ["a flag without its value", ["--name"], /^Option '-n, --name <value>' argument missing/],
    ["a value given to a boolean", ["--json=yes"], /^Option '--json' does not take an argument/],
  ])("refuses %s as INVALID_ARGUMENT with the usage, without running", async (_, args, reason) => {
    const { command, run } = demo();
    const { io, out } = fakeIo();
    const error = await refusal(command.main(["a", ...args], io));
    expect(error.code).toBe("INVALID_ARGUMENT");
    expect(error.message).toMatch(reason);
    expect(error.message.endsWith(`\n${USAGE}`)).toBe(true);
    expect(run).not.toHaveBeenCalled();
    expect(out).toEqual({ stdout: "", stderr: "" });
  });

  it("refuses an argument when the command takes none, and a mistake comes before --help", async () => {
    const { command, run } = demo(undefined, false);
    const { io, out } = fakeIo();
    const error = await refusal(command.main(["stray"], io));
    expect(error.code).toBe("INVALID_ARGUMENT");
    expect(error.message).toMatch(/^Unexpected argument 'stray'/);
    expect(error.message.endsWith(`\n${USAGE}`)).toBe(true);
    expect((await refusal(command.main(["--help", "--bogus"], io))).code).toBe("INVALID_ARGUMENT");
    expect(run).not.toHaveBeenCalled();
    expect(out.stdout).toBe("");
  });

  it("turns a UsageError from run into INVALID_ARGUMENT: its reason, then the usage", async () => {
    const { command } = demo(async () => {
      throw new UsageError("Cannot demo: give one thing");
    });
    const error = await refusal(command.main([], fakeIo().io));
    expect(error.code).toBe("INVALID_ARGUMENT");
    expect(error.message).toBe(`Cannot demo: give one thing\n${USAGE}`);
  });

  it("lets every other error from run through as it is", async () => {
    const notFound = new OciError("NOT_FOUND", "Cannot demo a: it is not there");
    const bug = new TypeError("x is not a function");
    for (const thrown of [notFound, bug]) {
      const { command } = demo(async () => {
        throw thrown;
      });
      await expect(command.main(["a"], fakeIo().io)).rejects.toBe(thrown);
    }
  });
});

const NAMES = ["pull", "inspect", "tensors", "ls", "rm", "gc", "verify", "pack", "push", "serve", "proxy"];

describe("main", () => {
  it("lists every command in the top-level help, in two columns", async () => {
    const { io, out } = fakeIo();
    expect(await main(["--help"], io)).toBe(0);
    expect(out.stderr).toBe("");
    // the help as it has always read: a script or a README may quote it
    expect(out.stdout).toBe(`Usage: oci-model <command> [options]

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

Run "oci-model <command> --help" for a command's options.
`);
  });

  it.each(NAMES)("`%s --help` prints that command's usage", async (name) => {
    const { io, out } = fakeIo();
    expect(await main([name, "--help"], io)).toBe(0);
    expect(out.stdout).toMatch(new RegExp(`^Usage: oci-model ${name} `));
    expect(out.stderr).toBe("");
  });

  it("names an unknown command, even one Object.prototype has", async () => {
    for (const name of ["fetch", "constructor", "toString"]) {
      const { io, out } = fakeIo();
      expect(await main([name], io)).toBe(1);
      expect(out.stdout).toBe("");
      expect(out.stderr).toMatch(
        new RegExp(`^oci-model: unknown command "${name}"\nUsage: oci-model <command>`),
      );
    }
  });

  it("reports a refused flag with the command's name, code and usage on stderr", async () => {
    const { io, out } = fakeIo();
    expect(await main(["gc", "--everything"], io)).toBe(1);
    expect(out.stdout).toBe("");
    expect(out.stderr).toMatch(/^oci-model gc: INVALID_ARGUMENT: Unknown option '--everything'/);
    expect(out.stderr).toContain("\nUsage: oci-model gc [--store DIR] [--json]\n");
  });

  it.each(["ls", "gc", "verify", "proxy"])("`%s` takes no arguments besides flags", async (name) => {
    const { io, out } = fakeIo();
    expect(await main([name, "stray"], io)).toBe(1);
    expect(out.stdout).toBe("");
    expect(out.stderr).toMatch(
      new RegExp(`^oci-model ${name}: INVALID_ARGUMENT: Unexpected argument 'stray'`),
    );
    expect(out.stderr).toContain(`\nUsage: oci-model ${name} `);
  });

  it("reports a usage mistake with the usage, a bad value without it", async () => {
    const { io, out } = fakeIo();
    expect(await main(["rm"], io)).toBe(1);
    expect(out.stderr).toBe(
      "oci-model rm: INVALID_ARGUMENT: Cannot remove: give one reference\nUsage: oci-model rm <reference> [--store DIR]\n\nForgets a model and frees the blobs no other model needs.\n",
    );
    out.stderr = "";
    expect(await main(["serve", "layout", "--port", "x"], io)).toBe(1);
    expect(out.stderr).toBe("oci-model serve: INVALID_ARGUMENT: Cannot serve: --port x is not a port\n");
  });

  it("pull is aborted by SIGINT from the CliIo, and stops listening when it ends", async () => {
    const store = await mkdtemp(join(tmpdir(), "oml-cli-unit-"));
    // a registry that takes the request and never answers: the pull waits until it is aborted
    const requests: IncomingMessage[] = [];
    const registry = createServer((request) => requests.push(request));
    await new Promise<void>((resolve) => registry.listen(0, "127.0.0.1", resolve));
    const { port } = registry.address() as AddressInfo;
    try {
      const { io, out, raise, listening } = fakeIo();
      const exit = main(["pull", `127.0.0.1:${port}/x/y:v1`, "--store", store], io);
      await vi.waitFor(() => expect(requests.length).toBeGreaterThan(0));
      expect(listening()).toBe(1);
      raise("SIGINT");
      expect(await exit).toBe(1);
      expect(out.stdout).toBe("");
      expect(out.stderr).toMatch(/^oci-model pull: ABORTED: /);
      expect(listening()).toBe(0);
    } finally {
      registry.closeAllConnections();
      await new Promise((resolve) => registry.close(resolve));
      await rm(store, { recursive: true, force: true });
    }
  });

  it.each([
    ["serve", ["LAYOUT", "--port", "0"], "SIGTERM"],
    ["proxy", ["--allow", "ghcr", "--port", "0"], "SIGINT"],
  ] as const)("%s runs until the CliIo raises a signal", async (name, args, signal) => {
    const layout = await mkdtemp(join(tmpdir(), "oml-cli-unit-"));
    try {
      const { io, out, raise, listening } = fakeIo();
      const exit = main([name, ...args.map((a) => (a === "LAYOUT" ? layout : a))], io);
      await vi.waitFor(() => expect(out.stdout).toMatch(/^http:\/\/127\.0\.0\.1:\d+\n$/));
      expect(listening()).toBeGreaterThan(0);
      const url = out.stdout.trim();
      expect((await fetch(`${url}/v2/`)).status).toBeLessThan(500);
      raise(signal);
      expect(await exit).toBe(0);
      await expect(fetch(`${url}/v2/`)).rejects.toThrow();
    } finally {
      await rm(layout, { recursive: true, force: true });
    }
  });
});

describe("the store commands", () => {
  it.each([["ls"], ["gc"], ["verify"], ["rm", "ns/model:v1"]])(
    "%s refuses a --store that names no store, and creates nothing there",
    async (...args) => {
      const dir = await mkdtemp(join(tmpdir(), "oml-cli-"));
      try {
        const missing = join(dir, "typo");
        const { io, out } = fakeIo();
        expect(await main([...args, "--store", missing], io)).toBe(1);
        expect(out.stderr).toContain(`NOT_FOUND: Cannot`);
        expect(out.stderr).toContain(`there is no store at ${missing}`);
        await expect(stat(missing)).rejects.toThrow(/ENOENT/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );

  it("reads the default store, not made yet, as empty, and does not make it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "oml-cli-"));
    try {
      const { io, out } = fakeIo();
      io.env = { XDG_CACHE_HOME: dir };
      expect(await main(["gc", "--json"], io)).toBe(0);
      expect(JSON.parse(out.stdout)).toEqual({ removedBlobs: [], removedIngests: [], freedBytes: 0 });
      await expect(stat(join(dir, "oci-model"))).rejects.toThrow(/ENOENT/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
