import { inspectModel, type ModelSummary, parseReference } from "../../index.js";
import { defineCommand, UsageError } from "./command.js";
import { formatSize } from "./format.js";
import { clientOptions, REGISTRY_FLAGS } from "./registry-flags.js";

const USAGE = `Usage: oci-model inspect <reference> [--json] [--plain-http] [--username U --password-stdin] [--timeout S] [--proxy URL]

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

/** `oci-model inspect`: a model's manifest, format and layers, from the manifest alone. */
export const inspectCommand = defineCommand({
  synopsis: "<reference>",
  summary: "show a model's manifest, format and layers (no download)",
  usage: USAGE,
  options: { ...REGISTRY_FLAGS, json: { type: "boolean" } },
  allowPositionals: true,
  async run(values, positionals, io) {
    if (positionals.length !== 1) throw new UsageError("Cannot inspect: give one reference");
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
  },
});
