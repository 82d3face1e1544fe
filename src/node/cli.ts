#!/usr/bin/env node
import { text } from "node:stream/consumers";
import { main } from "./cli/main.js";

process.exitCode = await main(process.argv.slice(2), {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  readStdin: () => text(process.stdin),
  env: process.env,
});
