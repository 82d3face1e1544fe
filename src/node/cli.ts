#!/usr/bin/env node
import "./cli/v8-marking.js"; // first: before the rest is loaded
import { text } from "node:stream/consumers";
import type { CliIo } from "./cli/command.js";
import { main } from "./cli/main.js";

// The one place the CLI touches `process`: the commands reach it only through this CliIo.
const io: CliIo = {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  terminal: process.stderr.isTTY ? process.stderr : undefined,
  readStdin: () => text(process.stdin),
  env: process.env,
  onSignal: (signals, listener) => {
    for (const signal of signals) process.once(signal, listener);
    return () => {
      for (const signal of signals) process.off(signal, listener);
    };
  },
};

process.exitCode = await main(process.argv.slice(2), io);
