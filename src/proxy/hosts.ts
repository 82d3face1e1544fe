import { OciError } from "../errors.js";
import { isLoopbackHost } from "../registry/hosts.js";

/**
 * Named allow-list presets: each registry's API host and the hosts of its token realm; for the
 * model registries, also the hosts their blob GETs redirect to, so that the list is the whole of
 * what the proxy reaches (an egress firewall in front of it can be given the same list).
 */
export const REGISTRY_PRESETS: Record<string, readonly string[]> = {
  dockerhub: ["registry-1.docker.io", "auth.docker.io"],
  ghcr: ["ghcr.io"],
  quay: ["quay.io"],
  gcr: ["gcr.io"],
  mcr: ["mcr.microsoft.com"],
  nvcr: ["nvcr.io", "authn.nvidia.com"],
  "ecr-public": ["public.ecr.aws"],
  // Ollama's registry (ollama/ollama types/model/name.go, `defaultHost`) and the Cloudflare R2 host
  // its blobs redirect to (named by an Ollama maintainer in ollama/ollama#4307 and #2390).
  ollama: ["registry.ollama.ai", "dd20bb891979d25aebc8bec07b2b3bbc.r2.cloudflarestorage.com"],
  // Hugging Face's registry for Ollama (`hf.co/<user>/<repo>:<quant>`), the huggingface.co host its
  // blob requests go to (ollama/ollama#11654 shows the `huggingface.co/v2/…/blobs/…` URL) and the
  // Hub's download hosts (huggingface/hub-docs#2628, docs/hub/models-downloading.md): the Xet bridge
  // and the LFS CDNs.
  huggingface: [
    "hf.co",
    "huggingface.co",
    "cas-bridge.xethub.hf.co",
    "cdn-lfs.hf.co",
    "cdn-lfs-us-1.hf.co",
    "cdn-lfs-eu-1.hf.co",
  ],
};

/**
 * `host[:port]` as the URL parser writes it for its scheme (lowercase, canonical IPv6, no default
 * port): the form the client's proxy URL carries, since it maps `<scheme>://<url.host>/…` to
 * `<proxy>/<url.host>/…`. So `host` and `host:80` are one key for plain http, `host` and
 * `host:443` one for https.
 */
function hostKey(host: string, scheme: "http:" | "https:", refusal: () => string): string {
  if (/^[^/?#@\s]+$/.test(host)) {
    try {
      return new URL(`${scheme}//${host}/`).host;
    } catch {
      // not a host: refused below
    }
  }
  throw new OciError("INVALID_ARGUMENT", `Cannot create the registry proxy: ${refusal()}`);
}

/**
 * The upstream hosts the proxy may contact and those it reaches over plain http, normalised alike
 * (see hostKey). Presets are expanded; unknown names are taken as host names. An entry names one
 * port: `host` is the scheme's default port (443, or 80 for a plain-http upstream, loopback hosts
 * included), `host:port` that port. Plain-http entries are read with http's default port, so
 * `myreg` and `myreg:80` are the same upstream in either list.
 */
export function upstreamHosts(
  allow: readonly string[],
  plainHttp: readonly string[],
): { allowed: Set<string>; plainHttp: Set<string> } {
  const plain = new Set<string>();
  for (const entry of plainHttp) {
    const name = entry.trim(); // the URL parser lowercases it
    const refusal = () => `the plainHttp entry "${entry}" is not a host[:port]`;
    if (name !== "") plain.add(hostKey(name, "http:", refusal));
  }
  const allowed = new Set<string>();
  for (const entry of allow) {
    const name = entry.trim().toLowerCase();
    if (name === "") continue;
    const refusal = () => `the allow-list entry "${entry}" is neither a preset nor a host[:port]`;
    for (const host of REGISTRY_PRESETS[name] ?? [name]) {
      const http = isLoopbackHost(host) || plain.has(hostKey(host, "http:", refusal));
      allowed.add(hostKey(host, http ? "http:" : "https:", refusal));
    }
  }
  return { allowed, plainHttp: plain };
}
