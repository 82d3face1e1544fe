import { MultiBar, Presets, type SingleBar } from "cli-progress";
import type { PullEvent } from "../../index.js";
import { formatSize } from "./format.js";

/**
 * Shows a pull: a bar per layer on a terminal, plain lines otherwise (logs, CI). Always on stderr,
 * so stdout carries only data.
 */
export function pullReporter(stream: NodeJS.WriteStream): {
  onEvent: (event: PullEvent) => void;
  stop: () => void;
} {
  if (!stream.isTTY) {
    return {
      onEvent: (event) => {
        if (event.type === "resolve") {
          stream.write(
            `pulling ${event.reference} (${event.format}, ${event.layers} blobs, ${formatSize(event.totalBytes)}, ${formatSize(event.storedBytes)} stored)\n`,
          );
        } else if (event.type === "layer-done") {
          stream.write(`  ${event.path ?? event.digest} done\n`);
        } else if (event.type === "extract") {
          stream.write(`  extracted ${event.path} (${formatSize(event.size)})\n`);
        } else if (event.type === "done") {
          stream.write(
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
