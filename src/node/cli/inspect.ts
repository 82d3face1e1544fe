import { parseArgs } from "node:util";
import { inspectModel, type ModelSummary, OciError, parseReference } from "../../index.js";
import { formatSize } from "./format.js";
import { type CliIo, clientOptions, REGISTRY_FLAGS } from "./options.js";

export const INSPECT_USAGE = `Usage: oci-model inspect <reference> [--json] [--plain-http] [--username U --password-stdin] [--timeout S] [--proxy URL]

Fetches and verifies a model's manifest and lists its layers. Nothing is downloaded but the manifest.
  --json            print one JSON object on stdout and nothing else
  --plain-http      use http instead of https (loopback registries always use http)
  --username U      log in as U; the password is read from stdin (--password-stdin)
  --timeout S       idle timeout in seconds (default 30)
  --proxy URL       go through an oci-model-loader registry proxy (oci-model proxy, or the edge worker)
Credentials otherwise come from $DOCKER_CONFIG/config.json or ~/.docker/config.json.`;

function formatSummary(s: ModelSummary): string {
  const lines = [
    `Reference     ${s.reference}`,
    `Registry      ${s.registry}`,
    `Repository    ${s.repository}`,
    `Digest        ${s.digest}`,
    `Media type    ${s.mediaType}`,
    ...(s.index ? [`From index    ${s.index.digest}`] : []),
    ...(s.artifactType ? [`Artifact type ${s.artifactType}`] : []),
    `Format        ${s.format}`,
    `Config        ${s.config.mediaType} ${formatSize(s.config.size)} ${s.config.digest}`,
    `Layers (${s.layers.length}, ${formatSize(s.layers.reduce((n, l) => n + l.size, 0))}):`,
  ];
  for (const l of s.layers) {
    lines.push(`  ${l.path ?? "(unnamed)"}  ${formatSize(l.size)}  ${l.mediaType}  ${l.digest}`);
  }
  return `${lines.join("\n")}\n`;
}

export async function inspectCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...REGISTRY_FLAGS, json: { type: "boolean" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    io.stdout(`${INSPECT_USAGE}\n`);
    return 0;
  }
  if (positionals.length !== 1)
    throw new OciError("INVALID_ARGUMENT", `Cannot inspect: give one reference\n${INSPECT_USAGE}`);
  const ref = parseReference(positionals[0] as string);
  const summary = await inspectModel(ref, await clientOptions(values, ref.registry, io));
  if (values.json) {
    const { reference, registry, repository, digest, mediaType, artifactType, format, layers } = summary;
    io.stdout(
      `${JSON.stringify({ reference, registry, repository, digest, mediaType, artifactType, format, layers })}\n`,
    );
  } else {
    io.stdout(formatSummary(summary));
  }
  return 0;
}
