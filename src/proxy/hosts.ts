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

/** Expands preset names and lowercases hosts. Unknown names are taken as host names. */
export function expandAllowList(allow: readonly string[]): Set<string> {
  const hosts = new Set<string>();
  for (const entry of allow) {
    const name = entry.trim().toLowerCase();
    if (name === "") continue;
    for (const host of REGISTRY_PRESETS[name] ?? [name]) hosts.add(host);
  }
  return hosts;
}
