// npm run demo [-- --registry REF]: the demo page, on the transformer committed under demo/layout (tag
// lm-bf16, served by `oci-model serve`'s handler) through the registry proxy, or on REF in a real
// registry. The character MLP (tag v1) runs there too; the transformers.js tab runs the tiny BERT
// committed beside it (tag tiny-bert-v1), or any reference typed in.
//
// npm run demo:build [-- --registry REF --proxy URL --origin URL --char-mlp REF --bert REF --out DIR]:
// the static site and the proxy Worker for production (dist-demo/, with DEPLOY.md).
import { dirname, join } from "node:path";
import { buildDemo, startDemo } from "./demo-servers.js";

const option = (name: string) => {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : undefined;
};
const registry = option("--registry") ?? process.env.DEMO_REGISTRY;

if (process.argv[2] === "build") {
  const proxy = option("--proxy");
  const charMlp = option("--char-mlp");
  const transformers = option("--bert");
  const origins = option("--origin");
  const outDir = option("--out");
  const built = await buildDemo({
    ...(outDir ? { outDir } : {}),
    ...(origins ? { origins } : {}),
    config: {
      ...(registry ? { reference: registry } : {}),
      ...(proxy ? { proxy } : {}),
      ...(charMlp ? { charMlp } : {}),
      ...(transformers ? { transformers } : {}),
    },
  });
  process.stdout.write(
    `\n  the site: ${built.site} (its demo-config.json names the model and the proxy)\n  the proxy Worker: ${built.proxy} (wrangler.toml)\n  how to deploy them: ${join(dirname(built.site), "DEPLOY.md")}\n\n`,
  );
} else {
  const open = !process.env.CI && process.env.BROWSER !== "none";
  const demo = await startDemo({ ...(registry ? { registry } : {}), open });
  process.stdout.write(
    `\n  oci-model-loader demo: ${demo.url}\n  model ${demo.reference} through the proxy at ${demo.proxy}\n${demo.charMlpReference ? `  character MLP: ${demo.url}?ref=${encodeURIComponent(demo.charMlpReference)}\n` : ""}${demo.transformersReference ? `  transformers.js tab: ${demo.transformersReference} (${demo.url}#transformers)\n` : ""}  (Ctrl-C to stop)\n\n`,
  );
  const stop = async () => {
    await demo.close();
    process.exit(0);
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
