import { describe, expect, it } from "vitest";
import type { ImageManifest, OciError } from "../../src/index.js";
import { detectFormat, layerPaths, parseManifest } from "../../src/internals.js";

const digest = (c: string) => `sha256:${c.repeat(64)}`;
const enc = (v: unknown) => new TextEncoder().encode(typeof v === "string" ? v : JSON.stringify(v));

function manifest(extra: Partial<ImageManifest> & Record<string, unknown> = {}): ImageManifest {
  return {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.docker.ai.model.config.v0.1+json", digest: digest("c"), size: 10 },
    layers: [{ mediaType: "application/vnd.docker.ai.safetensors", digest: digest("1"), size: 5 }],
    ...extra,
  } as ImageManifest;
}

function refusal(bytes: Uint8Array, contentType = ""): OciError {
  try {
    parseManifest(bytes, contentType);
  } catch (e) {
    return e as OciError;
  }
  throw new Error("accepted");
}

describe("parseManifest", () => {
  it("accepts a manifest and takes the media type from Content-Type when the body has none", () => {
    const { mediaType: _, ...body } = manifest();
    expect(parseManifest(enc(body), "application/vnd.docker.distribution.manifest.v2+json").mediaType).toBe(
      "application/vnd.docker.distribution.manifest.v2+json",
    );
  });

  it.each([
    [
      "the OCI manifest Content-Type",
      "application/vnd.oci.image.manifest.v1+json",
      "application/vnd.oci.image.manifest.v1+json",
    ],
    ["a generic Content-Type", "application/json", "application/vnd.oci.image.manifest.v1+json"],
    ["no Content-Type", "", "application/vnd.oci.image.manifest.v1+json"],
    // A registry that answers with the artifact type: the structure decides.
    [
      "an artifact type as Content-Type",
      "application/vnd.kitops.modelkit.manifest.v1+json",
      "application/vnd.oci.image.manifest.v1+json",
    ],
  ])(
    "reads a manifest without a top-level mediaType (KitOps 1.7) served with %s",
    (_, contentType, mediaType) => {
      const { mediaType: _omitted, ...body } = manifest({
        artifactType: "application/vnd.kitops.modelkit.manifest.v1+json",
      });
      const parsed = parseManifest(enc(body), contentType);
      expect(parsed.mediaType).toBe(mediaType);
      expect(parsed).toMatchObject({ artifactType: "application/vnd.kitops.modelkit.manifest.v1+json" });
    },
  );

  it("reads an index without a top-level mediaType by its manifests, and checks it as one", () => {
    const index = {
      schemaVersion: 2,
      manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: digest("1"), size: 3 }],
    };
    expect(parseManifest(enc(index), "application/octet-stream").mediaType).toBe(
      "application/vnd.oci.image.index.v1+json",
    );
    const { mediaType: _, ...body } = manifest();
    expect(refusal(enc(body), "application/vnd.oci.image.index.v1+json").message).toMatch(
      /"manifests" is not an array/,
    );
  });

  it.each([
    ["not JSON", enc("{nope"), /not valid JSON/],
    ["not an object", enc("[]"), /not a JSON object/],
    ["schemaVersion 1", enc(manifest({ schemaVersion: 1 as 2 })), /schemaVersion/],
    ["no config", enc(manifest({ config: undefined as never })), /config is not a descriptor/],
    [
      "bad layer digest",
      enc(manifest({ layers: [{ mediaType: "x", digest: "sha256:zz", size: 1 }] })),
      /layers\[0\]/,
    ],
    [
      "negative size",
      enc(manifest({ layers: [{ mediaType: "x", digest: digest("1"), size: -1 }] })),
      /invalid size/,
    ],
    [
      "fractional size",
      enc(manifest({ layers: [{ mediaType: "x", digest: digest("1"), size: 1.5 }] })),
      /invalid size/,
    ],
    ["layers not an array", enc(manifest({ layers: {} as never })), /not an array/],
    [
      "absurd layer count",
      enc(manifest({ layers: Array(10_001).fill({ mediaType: "x", digest: digest("1"), size: 1 }) })),
      /limit/,
    ],
    ["unknown media type", enc(manifest({ mediaType: "application/x-foo" })), /not a manifest or index type/],
  ])("refuses %s with MANIFEST_INVALID", (_, bytes, reason) => {
    const error = refusal(bytes);
    expect(error.code).toBe("MANIFEST_INVALID");
    expect(error.message).toMatch(reason);
  });

  it("refuses a body whose mediaType disagrees with the Content-Type", () => {
    const error = refusal(enc(manifest()), "application/vnd.oci.image.index.v1+json");
    expect(error.code).toBe("MANIFEST_INVALID");
    expect(error.message).toMatch(/disagrees/);
  });
});

describe("detectFormat and layerPaths", () => {
  it.each([
    [manifest(), "docker-v0.1"],
    [
      manifest({
        config: {
          mediaType: "application/vnd.docker.ai.model.config.v0.2+json",
          digest: digest("c"),
          size: 1,
        },
      }),
      "docker-v0.2",
    ],
    [manifest({ artifactType: "application/vnd.cncf.model.manifest.v1+json" }), "modelpack"],
    [
      manifest({
        config: { mediaType: "application/vnd.cnai.model.config.v1+json", digest: digest("c"), size: 1 },
      }),
      "modelpack",
    ],
    [
      manifest({
        config: { mediaType: "application/vnd.kitops.modelkit.config.v1+json", digest: digest("c"), size: 1 },
      }),
      "kitops",
    ],
    [
      manifest({
        config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: digest("c"), size: 1 },
      }),
      "docker-v0.1",
    ],
    [
      manifest({
        config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: digest("c"), size: 1 },
        layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: digest("1"), size: 1 }],
      }),
      "unknown",
    ],
  ])("detects %#", (m, format) => {
    expect(detectFormat(m)).toBe(format);
  });

  it("names layers by annotation, else numbers unnamed shards in manifest order", () => {
    const m = manifest({
      layers: [
        { mediaType: "application/vnd.docker.ai.safetensors", digest: digest("1"), size: 1 },
        { mediaType: "application/vnd.docker.ai.vllm.config.tar", digest: digest("2"), size: 1 },
        { mediaType: "application/vnd.docker.ai.safetensors", digest: digest("3"), size: 1 },
        {
          mediaType: "application/vnd.cncf.model.weight.v1.raw",
          digest: digest("4"),
          size: 1,
          annotations: { "org.cncf.model.filepath": "sub/w.bin", "org.opencontainers.image.title": "w.bin" },
        },
        {
          mediaType: "x",
          digest: digest("5"),
          size: 1,
          annotations: { "org.opencontainers.image.title": "README.md" },
        },
      ],
    });
    expect(layerPaths(m)).toEqual([
      "model-00001-of-00002.safetensors",
      undefined,
      "model-00002-of-00002.safetensors",
      "sub/w.bin",
      "README.md",
    ]);
  });
});
