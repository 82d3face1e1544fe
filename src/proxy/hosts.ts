import { OciError } from "../errors.js";

/** Named allow-list presets: each registry's API host and the hosts of its token realm. */
export const REGISTRY_PRESETS: Record<string, readonly string[]> = {
  dockerhub: ["registry-1.docker.io", "auth.docker.io"],
  ghcr: ["ghcr.io"],
  quay: ["quay.io"],
  gcr: ["gcr.io"],
  mcr: ["mcr.microsoft.com"],
  nvcr: ["nvcr.io", "authn.nvidia.com"],
  "ecr-public": ["public.ecr.aws"],
};

function allowKey(entry: string, host: string): string {
  let url: URL | undefined;
  try {
    url = /^[^/?#@\s]+$/.test(host) ? new URL(`https://${host}/`) : undefined;
  } catch {
    url = undefined;
  }
  if (!url) {
    throw new OciError(
      "INVALID_ARGUMENT",
      `Cannot create the registry proxy: the allow-list entry "${entry}" is neither a preset nor a host[:port]`,
    );
  }
  return url.host;
}

/**
 * Expands preset names and normalises hosts as the URL parser writes them (lowercase, canonical
 * IPv6, no `:443`). An entry names one port: `host` is the default port (443, or 80 for a plain-http
 * upstream), `host:port` that port. Unknown names are taken as host names.
 */
export function expandAllowList(allow: readonly string[]): Set<string> {
  const hosts = new Set<string>();
  for (const entry of allow) {
    const name = entry.trim().toLowerCase();
    if (name === "") continue;
    for (const host of REGISTRY_PRESETS[name] ?? [name]) hosts.add(allowKey(entry, host));
  }
  return hosts;
}
