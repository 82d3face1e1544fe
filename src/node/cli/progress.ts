import { MultiBar, Presets, type SingleBar } from "cli-progress";
import type { PullEvent } from "../../index.js";
import type { CliIo } from "./command.js";
import { formatSize } from "./format.js";

/**
 * Shows a pull: a bar per layer on a terminal, plain lines otherwise (logs, CI). Always on stderr,
 * so stdout carries only data.
 */
export function pullReporter(io: Pick<CliIo, "stderr" | "terminal">): {
  onEvent: (event: PullEvent) => void;
  stop: () => void;
} {
  const stream = io.terminal;
  if (!stream) {
    return {
      onEvent: (event) => {
        if (event.type === "resolve") {
          io.stderr(
            `pulling ${event.reference} (${event.format}, ${event.layers} blobs, ${formatSize(event.totalBytes)}, ${formatSize(event.storedBytes)} stored)\n`,
          );
        } else if (event.type === "layer-done") {
          io.stderr(`  ${event.path ?? event.digest} done\n`);
        } else if (event.type === "extract") {
          io.stderr(`  extracted ${event.path} (${formatSize(event.size)})\n`);
        } else if (event.type === "done") {
          io.stderr(
            `done: fetched ${formatSize(event.fetchedBytes)}, reused ${formatSize(event.reusedBytes)} in ${event.seconds.toFixed(1)} s\n`,
          );
        }
      },
      stop: () => {},
    };
  }
  const multi = new MultiBar(
    {
      stream,
      format: " {bar} {percentage}% | {name} | {value}/{total} bytes",
      hideCursor: true,
      clearOnComplete: false,
    },
    Presets.shades_classic,
  );
  const bars = new Map<string, SingleBar>();
  return {
    onEvent: (event) => {
      if (event.type === "layer-start") {
        bars.set(
          event.digest,
          multi.create(event.size, event.fromCache ? event.size : 0, {
            name: event.path ?? event.digest.slice(0, 19),
          }),
        );
      } else if (event.type === "progress") {
        bars.get(event.digest)?.update(event.loaded);
      } else if (event.type === "done") {
        multi.stop();
        stream.write(
          `done: fetched ${formatSize(event.fetchedBytes)}, reused ${formatSize(event.reusedBytes)} in ${event.seconds.toFixed(1)} s\n`,
        );
      }
    },
    stop: () => multi.stop(),
  };
}
