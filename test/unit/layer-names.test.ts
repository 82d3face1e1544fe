// File names and weights of every model layer type (issue 17): the naming of Docker Model Runner's
// bundle for unannotated layers, annotated paths kept, and weights by media type, not by name.
import { describe, expect, it } from "vitest";
import { createDefaultHasher } from "../../src/digest/hashers.js";
import type { ImageManifest, ModelRecord } from "../../src/index.js";
import { createMemoryStore, Model } from "../../src/index.js";
import { detectFormat, layerPaths } from "../../src/model/format.js";
import { planLayers } from "../../src/model/layers.js";
import type { Descriptor } from "../../src/oci/manifest.js";
import { type LayerRole, modelLayerType } from "../../src/oci/media-types.js";
import { pushBytes } from "../../src/store/bytes.js";
import { isWeightFile } from "../../src/tensors/files.js";

const D = "application/vnd.docker.ai.";
let next = 0;
const layer = (mediaType: string, path?: string): Descriptor => ({
  mediaType,
  digest: `sha256:${(next++).toString(16).padStart(64, "0")}`,
  size: 1,
  ...(path === undefined ? {} : { annotations: { "org.cncf.model.filepath": path } }),
});
const manifest = (layers: Descriptor[], config = `${D}model.config.v0.1+json`): ImageManifest => ({
  schemaVersion: 2,
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: { mediaType: config, digest: `sha256:${"c".repeat(64)}`, size: 2 },
  layers,
});

describe("modelLayerType: every layer media type the formats define", () => {
  it.each<
    [string, LayerRole | undefined, "file" | "tar" | undefined, string | undefined, string | undefined]
  >([
    // Docker model-spec and Model Runner (docker/model-spec spec.md; model-runner types/config.go)
    [`${D}gguf.v3`, "weights", "file", undefined, "gguf"],
    [`${D}safetensors`, "weights", "file", undefined, "safetensors"],
    [`${D}dduf`, "weights", "file", undefined, "dduf"],
    [`${D}mmproj`, "projector", "file", undefined, "gguf"],
    [`${D}gguf.v3.mmproj`, "projector", "file", undefined, "gguf"],
    [`${D}gguf.v3.lora`, "adapter", "file", undefined, "gguf"],
    [`${D}chat.template.jinja`, "chat-template", "file", undefined, undefined],
    [`${D}license`, "license", "file", undefined, undefined],
    [`${D}vllm.config.tar`, "config", "tar", undefined, undefined],
    [`${D}dir.tar`, "file", "tar", undefined, undefined],
    [`${D}model.file`, "file", "file", undefined, undefined],
    [`${D}model.file.v1+gguf`, "weights", "file", undefined, "gguf"],
    // ModelPack (modelpack/model-spec specs-go/v1/mediatype.go), and the legacy types Docker reads
    ["application/vnd.cncf.model.weight.v1.raw", "weights", "file", undefined, undefined],
    ["application/vnd.cncf.model.weight.v1.tar", "weights", "tar", undefined, undefined],
    ["application/vnd.cncf.model.weight.v1.tar+gzip", "weights", "tar", "gzip", undefined],
    ["application/vnd.cncf.model.weight.v1.tar+zstd", "weights", "tar", "zstd", undefined],
    ["application/vnd.cncf.model.weight.config.v1.raw", "config", "file", undefined, undefined],
    ["application/vnd.cncf.model.weight.config.v1.tar+gzip", "config", "tar", "gzip", undefined],
    ["application/vnd.cncf.model.doc.v1.raw", "doc", "file", undefined, undefined],
    ["application/vnd.cncf.model.doc.v1.tar+zstd", "doc", "tar", "zstd", undefined],
    ["application/vnd.cncf.model.code.v1.tar", "code", "tar", undefined, undefined],
    ["application/vnd.cncf.model.dataset.v1.tar+gzip", "dataset", "tar", "gzip", undefined],
    ["application/vnd.cnai.model.weight.v1.tar", "weights", "tar", undefined, undefined],
    ["application/vnd.cncf.model.weight.v1.gguf", "weights", "file", undefined, "gguf"],
    ["application/vnd.cncf.model.weight.v1.safetensors", "weights", "file", undefined, "safetensors"],
    // KitOps (kitops-ml/kitops pkg/lib/constants/mediatype)
    ["application/vnd.kitops.modelkit.model.v1.tar", "weights", "tar", undefined, undefined],
    ["application/vnd.kitops.modelkit.model.v1.tar+gzip", "weights", "tar", "gzip", undefined],
    ["application/vnd.kitops.modelkit.model.v1.raw", "weights", "file", undefined, undefined],
    ["application/vnd.kitops.modelkit.modelpart.v1.raw", "part", "file", undefined, undefined],
    ["application/vnd.kitops.modelkit.modelpart.v1.tar+zstd", "part", "tar", "zstd", undefined],
    ["application/vnd.kitops.modelkit.dataset.v1.tar", "dataset", "tar", undefined, undefined],
    ["application/vnd.kitops.modelkit.code.v1.tar+gzip", "code", "tar", "gzip", undefined],
    ["application/vnd.kitops.modelkit.docs.v1.raw", "doc", "file", undefined, undefined],
    ["application/vnd.kitops.modelkit.model.v1.raw+gzip", "weights", "file", "gzip", undefined],
    // Not model layer types
    ["application/vnd.oci.image.layer.v1.tar", undefined, undefined, undefined, undefined],
    ["application/vnd.cncf.model.weight.v1.raw+gzip", undefined, undefined, undefined, undefined],
    ["application/vnd.cncf.model.weight.v2.raw", undefined, undefined, undefined, undefined],
    ["application/vnd.kitops.modelkit.config.v1+json", undefined, undefined, undefined, undefined],
    [`${D}model.config.v0.1+json`, undefined, undefined, undefined, undefined],
    [`${D}gguf.v4`, undefined, undefined, undefined, undefined],
  ])("%s: %s, %s, %s, %s", (mediaType, role, packing, compression, fileFormat) => {
    const type = modelLayerType(mediaType);
    expect(type?.role).toBe(role);
    expect(type?.packing).toBe(packing);
    expect(type?.compression).toBe(compression);
    expect(type?.fileFormat).toBe(fileFormat);
  });
});

describe("layerPaths: an unannotated layer is named as Model Runner's bundle names it", () => {
  it.each<[string, Descriptor[], (string | undefined)[]]>([
    ["one GGUF", [layer(`${D}gguf.v3`)], ["model.gguf"]],
    [
      "GGUF shards in layer order, other layers between them",
      [layer(`${D}gguf.v3`), layer(`${D}license`), layer(`${D}gguf.v3`), layer(`${D}gguf.v3`)],
      ["model-00001-of-00003.gguf", "LICENSE", "model-00002-of-00003.gguf", "model-00003-of-00003.gguf"],
    ],
    ["one safetensors", [layer(`${D}safetensors`)], ["model.safetensors"]],
    [
      "safetensors shards",
      [layer(`${D}safetensors`), layer(`${D}safetensors`)],
      ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"],
    ],
    ["DDUF", [layer(`${D}dduf`)], ["model.dduf"]],
    ["Model Runner's projector", [layer(`${D}gguf.v3`), layer(`${D}mmproj`)], ["model.gguf", "model.mmproj"]],
    ["the spec's projector", [layer(`${D}gguf.v3.mmproj`)], ["model.mmproj"]],
    ["the spec's LoRA adapter", [layer(`${D}gguf.v3.lora`)], ["adapter.gguf"]],
    ["chat template", [layer(`${D}chat.template.jinja`)], ["template.jinja"]],
    [
      "licenses",
      [layer(`${D}license`), layer(`${D}license`), layer(`${D}license`)],
      ["LICENSE", "LICENSE-2", "LICENSE-3"],
    ],
    ["the 2025 prototype's GGUF", [layer(`${D}model.file.v1+gguf`)], ["model.gguf"]],
    [
      "legacy ModelPack weights, numbered with Docker's of the same format",
      [layer("application/vnd.cncf.model.weight.v1.gguf"), layer(`${D}gguf.v3`)],
      ["model-00001-of-00002.gguf", "model-00002-of-00002.gguf"],
    ],
    [
      "legacy ModelPack safetensors",
      [layer("application/vnd.cncf.model.weight.v1.safetensors")],
      ["model.safetensors"],
    ],
    [
      "annotated layers keep their path and are not counted",
      [
        layer(`${D}gguf.v3`, "weights/q4.gguf"),
        layer(`${D}gguf.v3`),
        layer(`${D}mmproj`, "mmproj-model-f16.gguf"),
        layer(`${D}license`, "LICENSE.txt"),
      ],
      ["weights/q4.gguf", "model.gguf", "mmproj-model-f16.gguf", "LICENSE.txt"],
    ],
    [
      "a generated name an annotated layer holds is not given (the pull names that layer by digest)",
      [layer(`${D}license`, "LICENSE"), layer(`${D}license`)],
      ["LICENSE", undefined],
    ],
    [
      "archives, generic files, raw ModelPack/KitOps layers and unknown types get no name",
      [
        layer(`${D}vllm.config.tar`),
        layer(`${D}dir.tar`),
        layer(`${D}model.file`),
        layer("application/vnd.cncf.model.weight.v1.raw"),
        layer("application/vnd.kitops.modelkit.model.v1.raw+gzip"),
        layer("application/vnd.oci.image.layer.v1.tar"),
        layer("application/x-unknown"),
      ],
      [undefined, undefined, undefined, undefined, undefined, undefined, undefined],
    ],
  ])("%s", (_, layers, paths) => {
    expect(layerPaths(manifest(layers))).toEqual(paths);
  });

  it("reads the path annotations in order: cncf, cnai, then the OCI title", () => {
    const both = {
      ...layer(`${D}gguf.v3`),
      annotations: {
        "org.opencontainers.image.title": "title.gguf",
        "org.cnai.model.filepath": "cnai.gguf",
      },
    };
    expect(layerPaths(manifest([both]))).toEqual(["cnai.gguf"]);
  });

  it("widens the shard number past 99,999 shards", () => {
    const many = Array.from({ length: 100_000 }, () => layer(`${D}safetensors`));
    const paths = layerPaths(manifest(many));
    expect(paths[0]).toBe("model-000001-of-100000.safetensors");
    expect(paths.at(-1)).toBe("model-100000-of-100000.safetensors");
  });
});

describe("planLayers: which layers are weights, archives, compressed", () => {
  it.each<[string, string | undefined, boolean, boolean, boolean, string | undefined]>([
    // media type, annotated path, skipped by config-only, a model weight, archive, compression
    [`${D}gguf.v3`, undefined, true, true, false, undefined],
    [`${D}safetensors`, "model.safetensors", true, true, false, undefined],
    [`${D}dduf`, undefined, true, true, false, undefined],
    [`${D}mmproj`, "mmproj-model-f16.gguf", true, false, false, undefined],
    [`${D}gguf.v3.mmproj`, undefined, true, false, false, undefined],
    [`${D}gguf.v3.lora`, "lora.gguf", true, false, false, undefined],
    [`${D}chat.template.jinja`, undefined, false, false, false, undefined],
    [`${D}license`, "LICENSE.safetensors", false, false, false, undefined],
    [`${D}model.file`, "config.json", false, false, false, undefined],
    [`${D}model.file`, "extra.safetensors", true, true, false, undefined],
    [`${D}vllm.config.tar`, undefined, false, false, true, undefined],
    [`${D}dir.tar`, "images", false, false, true, undefined],
    [`${D}model.file.v1+gguf`, undefined, true, true, false, undefined],
    ["application/vnd.cncf.model.weight.v1.raw", "model.safetensors", true, true, false, undefined],
    ["application/vnd.cncf.model.weight.v1.raw", undefined, true, true, false, undefined],
    ["application/vnd.cncf.model.weight.v1.tar+gzip", undefined, true, false, true, "gzip"],
    ["application/vnd.cncf.model.weight.v1.tar+zstd", undefined, true, false, true, "zstd"],
    ["application/vnd.cncf.model.weight.config.v1.raw", "config.json", false, false, false, undefined],
    ["application/vnd.cncf.model.doc.v1.raw", "notes.gguf", false, false, false, undefined],
    ["application/vnd.cncf.model.dataset.v1.tar", undefined, false, false, true, undefined],
    ["application/vnd.cncf.model.weight.v1.gguf", undefined, true, true, false, undefined],
    ["application/vnd.kitops.modelkit.model.v1.tar+gzip", undefined, true, false, true, "gzip"],
    ["application/vnd.kitops.modelkit.model.v1.raw", "model.gguf", true, true, false, undefined],
    [
      "application/vnd.kitops.modelkit.modelpart.v1.raw",
      "lora/adapter.safetensors",
      true,
      false,
      false,
      undefined,
    ],
    ["application/vnd.kitops.modelkit.docs.v1.raw", "README.md", false, false, false, undefined],
    ["application/vnd.kitops.modelkit.code.v1.tar", undefined, false, false, true, undefined],
    // Unknown types: by the annotated name, archives by suffix.
    ["application/octet-stream", "weights.onnx", true, true, false, undefined],
    ["application/octet-stream", "config.json", false, false, false, undefined],
    ["application/vnd.oci.image.layer.v1.tar+gzip", undefined, false, false, true, "gzip"],
  ])(
    "%s at %s: config-only skips %s, weight %s, archive %s, %s",
    (mediaType, path, skip, weight, archive, compression) => {
      const [plan] = planLayers(manifest([layer(mediaType, path)]));
      expect(plan).toMatchObject({ weights: skip, modelWeight: weight, archive, compression });
    },
  );

  it.each<[string, string]>([
    ["application/vnd.kitops.modelkit.model.v1.raw+gzip", "gzip"],
    ["application/vnd.kitops.modelkit.docs.v1.raw+zstd", "zstd"],
  ])("plans %s as one file compressed as a whole (%s), to unpack", (mediaType, compression) => {
    const [plan] = planLayers(manifest([layer(mediaType, "model.gguf")]));
    expect(plan).toMatchObject({ archive: false, compression, path: "model.gguf" });
  });
});

describe("isWeightFile: by the layer's media type where a format defines it, else by name", () => {
  it.each<[string, string | undefined, boolean]>([
    ["mmproj-model-f16.gguf", `${D}mmproj`, false],
    ["mmproj-model-f16.gguf", undefined, true],
    ["model.mmproj", `${D}gguf.v3.mmproj`, false],
    ["adapter.gguf", `${D}gguf.v3.lora`, false],
    ["template.jinja", `${D}chat.template.jinja`, false],
    ["LICENSE", `${D}license`, false],
    ["model.gguf", `${D}gguf.v3`, true],
    ["model.dduf", `${D}dduf`, true],
    ["sha256-00", "application/vnd.cncf.model.weight.v1.raw", true],
    ["tokenizer.safetensors", "application/vnd.cncf.model.weight.config.v1.raw", false],
    ["config.json", `${D}model.file`, false],
    ["extra.safetensors", `${D}model.file`, true],
    ["unpacked.safetensors", "application/octet-stream", true],
    ["unpacked.json", "application/octet-stream", false],
  ])("%s (%s): %s", (path, mediaType, weight) => {
    expect(isWeightFile(path, mediaType)).toBe(weight);
  });
});

describe("detectFormat for the other shapes", () => {
  it.each<[string, ImageManifest, string]>([
    [
      "the 2025 prototype",
      manifest([layer(`${D}model.file.v1+gguf`)], `${D}model.config.v1+json`),
      "docker-v0.1",
    ],
    [
      "KitOps by artifactType alone",
      {
        ...manifest([], "application/vnd.oci.empty.v1+json"),
        artifactType: "application/vnd.kitops.modelkit.manifest.v1+json",
      },
      "kitops",
    ],
    [
      "KitOps by its layers alone",
      manifest([layer("application/vnd.kitops.modelkit.model.v1.tar")], "application/vnd.oci.empty.v1+json"),
      "kitops",
    ],
    [
      "ModelPack by its layers alone",
      manifest([layer("application/vnd.cncf.model.weight.v1.raw")], "application/vnd.oci.empty.v1+json"),
      "modelpack",
    ],
    [
      "Docker layers with an annotation",
      manifest([layer(`${D}gguf.v3`, "m.gguf")], "application/vnd.oci.empty.v1+json"),
      "docker-v0.2",
    ],
  ])("%s", (_, m, format) => {
    expect(detectFormat(m)).toBe(format);
  });
});

describe("Model: weights by media type and the chat template", () => {
  async function model(files: { path: string; mediaType: string; bytes: string; weight: boolean }[]) {
    const store = createMemoryStore();
    const infos = [];
    for (const f of files) {
      const d = await pushBytes(store, new TextEncoder().encode(f.bytes), f.mediaType, createDefaultHasher);
      infos.push({ path: f.path, digest: d.digest, size: d.size, mediaType: f.mediaType, weight: f.weight });
    }
    const record: ModelRecord = {
      reference: "localhost:5000/m:v1",
      digest: `sha256:${"a".repeat(64)}`,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      format: "docker-v0.2",
      config: { mediaType: `${D}model.config.v0.2+json`, digest: `sha256:${"b".repeat(64)}`, size: 2 },
      files: infos,
      pending: [],
      pulledAt: "2026-01-01T00:00:00Z",
    };
    return new Model(store, record, {}, undefined);
  }

  it("counts a projector that a record marked as a weight (an annotated .gguf) out of the weights", async () => {
    const m = await model([
      { path: "model.gguf", mediaType: `${D}gguf.v3`, bytes: "w", weight: true },
      { path: "mmproj-model-f16.gguf", mediaType: `${D}mmproj`, bytes: "p", weight: true },
      { path: "extracted.safetensors", mediaType: "application/octet-stream", bytes: "x", weight: true },
    ]);
    expect(m.weights).toEqual(["model.gguf", "extracted.safetensors"]);
    expect(m.files.get("mmproj-model-f16.gguf")?.weight).toBe(false);
  });

  it("returns the chat template layer's text, else chat_template.jinja, else undefined", async () => {
    const typed = await model([
      { path: "chat_template.jinja", mediaType: "application/octet-stream", bytes: "hf", weight: false },
      {
        path: "template.jinja",
        mediaType: `${D}chat.template.jinja`,
        bytes: "{{ messages }}",
        weight: false,
      },
    ]);
    expect(typed.chatTemplatePath).toBe("template.jinja");
    expect(await typed.chatTemplate()).toBe("{{ messages }}");
    const hf = await model([
      { path: "chat_template.jinja", mediaType: `${D}model.file`, bytes: "hf", weight: false },
    ]);
    expect(await hf.chatTemplate()).toBe("hf");
    const none = await model([{ path: "model.gguf", mediaType: `${D}gguf.v3`, bytes: "w", weight: true }]);
    expect(none.chatTemplatePath).toBeUndefined();
    expect(await none.chatTemplate()).toBeUndefined();
  });
});
