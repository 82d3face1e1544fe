// npx tsx scripts/tsdoc-examples.ts: writes every ```ts block of a TSDoc comment in src/ to
// examples/tsdoc/<module>-<n>.ts, where `tsc -p test` (npm run typecheck) compiles it against the
// package name, as the README's examples are. test/unit/tsdoc-examples.test.ts fails when the folder
// is not what this script would write, so an example edited in src/ without rerunning it fails too.
//
// Each file is the example as written, after an import of every public name it uses (from
// "oci-model-loader", else "oci-model-loader/node", "/proxy" or "/internals"), formatted by Biome.
// It is a module, so top-level `await` works; a name the example takes as given is declared in the
// example itself: `declare const store: WritableStore;`.
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import ts from "typescript";

export const ROOT = join(import.meta.dirname, "..");
/** The generated folder, relative to the repository root. */
export const OUT_DIR = "examples/tsdoc";

/** The entry points an example may import from, in order of preference for a name in several. */
const ENTRIES: ReadonlyArray<readonly [file: string, specifier: string]> = [
  ["src/index.ts", "oci-model-loader"],
  ["src/node/index.ts", "oci-model-loader/node"],
  ["src/proxy/index.ts", "oci-model-loader/proxy"],
  ["src/internals.ts", "oci-model-loader/internals"],
];

export interface TsdocExample {
  /** Where it came from: `src/model/pull.ts`. */
  source: string;
  /** The declaration the comment documents (`pullModel`), or undefined for a comment on none. */
  documents: string | undefined;
  /** The block's lines, comment markers removed. */
  code: string;
}

interface Export {
  specifier: string;
  typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts") && !e.name.endsWith(".d.ts"))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)))
    .sort();
}

function parse(path: string, text: string): ts.SourceFile {
  return ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
}

function declarationName(node: ts.Node): string | undefined {
  if (ts.isVariableStatement(node)) node = node.declarationList.declarations[0] ?? node;
  const name = ts.isConstructorDeclaration(node)
    ? "constructor"
    : ts.getNameOfDeclaration(node as ts.Declaration)?.getText();
  const owner = node.parent;
  if (name && (ts.isClassLike(owner) || ts.isInterfaceDeclaration(owner)) && owner.name)
    return `${owner.name.text}.${name}`;
  return name;
}

/** The doc comments of a file, each once, with the name of what it documents. */
function docComments(file: ts.SourceFile): { text: string; documents: string | undefined }[] {
  const seen = new Set<number>();
  const found: { text: string; documents: string | undefined }[] = [];
  const visit = (node: ts.Node): void => {
    for (const doc of (node as { jsDoc?: ts.JSDoc[] }).jsDoc ?? []) {
      if (seen.has(doc.pos)) continue;
      seen.add(doc.pos);
      found.push({ text: file.text.slice(doc.pos, doc.end), documents: declarationName(node) });
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found.sort((a, b) => file.text.indexOf(a.text) - file.text.indexOf(b.text));
}

/** A doc comment's lines without the comment markers: `/**`, `*\/` and each line's leading ` * `. */
function commentLines(comment: string): string[] {
  return comment
    .replace(/^\/\*\*/, "")
    .replace(/\*\/$/, "")
    .split("\n")
    .map((line) => line.replace(/^\s*\* ?/, "").trimEnd());
}

/** Every ```ts block in a doc comment under src/, in file order. */
export function tsdocExamples(): TsdocExample[] {
  const examples: TsdocExample[] = [];
  for (const source of sourceFiles("src")) {
    const file = parse(source, readFileSync(join(ROOT, source), "utf8"));
    for (const { text, documents } of docComments(file)) {
      const lines = commentLines(text);
      for (let i = 0; i < lines.length; i++) {
        if (lines[i] !== "```ts") continue;
        const end = lines.indexOf("```", i + 1);
        if (end < 0) throw new Error(`${source}: a \`\`\`ts block in the TSDoc of ${documents} never closes`);
        examples.push({ source, documents, code: lines.slice(i + 1, end).join("\n") });
        i = end;
      }
    }
  }
  return examples;
}

/**
 * What the type-check would skip: code fences in doc comments under src/ in another language
 * (`js`, `typescript`…), and `@example` tags with no ```ts block.
 */
export function uncheckedExamples(): string[] {
  const found: string[] = [];
  for (const source of sourceFiles("src")) {
    const file = parse(source, readFileSync(join(ROOT, source), "utf8"));
    for (const { text, documents } of docComments(file)) {
      const lines = commentLines(text);
      for (const line of lines)
        if (/^```(typescript|tsx|jsx?|javascript|mjs)\s*$/.test(line))
          found.push(`${source} (${documents}): ${line}`);
      const sections = lines
        .join("\n")
        .split(/^@example\b/m)
        .slice(1);
      for (const section of sections)
        if (!/^```ts$/m.test(section.split(/^@\w+/m)[0] ?? ""))
          found.push(`${source} (${documents}): an @example without a \`\`\`ts block`);
    }
  }
  return found;
}

/** Every name the public entry points export, with the entry point that exports it. */
function publicNames(): Map<string, Export> {
  const names = new Map<string, Export>();
  for (const [path, specifier] of ENTRIES) {
    const file = parse(path, readFileSync(join(ROOT, path), "utf8"));
    for (const statement of file.statements) {
      if (!ts.isExportDeclaration(statement) || !statement.exportClause) continue;
      if (!ts.isNamedExports(statement.exportClause)) continue;
      for (const element of statement.exportClause.elements) {
        const name = element.name.text;
        if (!names.has(name))
          names.set(name, { specifier, typeOnly: statement.isTypeOnly || element.isTypeOnly });
      }
    }
  }
  return names;
}

/** The names an example uses but does not declare or import itself. */
function freeNames(code: string): Set<string> {
  const used = new Set<string>();
  const declared = new Set<string>();
  const visit = (node: ts.Node): void => {
    if (ts.isIdentifier(node)) {
      const parent = node.parent;
      const isName = (p: ts.Node & { name?: ts.Node }) => p.name === node;
      if (ts.isImportSpecifier(parent) || ts.isImportClause(parent) || ts.isNamespaceImport(parent)) {
        declared.add(node.text);
      } else if (ts.isPropertyAccessExpression(parent) && parent.name === node) {
        // obj.name
      } else if (ts.isQualifiedName(parent) && parent.right === node) {
        // Namespace.Type
      } else if (ts.isBindingElement(parent) && parent.propertyName === node) {
        // { name: local }
      } else if (
        (ts.isPropertyAssignment(parent) ||
          ts.isPropertySignature(parent) ||
          ts.isPropertyDeclaration(parent) ||
          ts.isMethodDeclaration(parent) ||
          ts.isMethodSignature(parent) ||
          ts.isGetAccessor(parent) ||
          ts.isSetAccessor(parent)) &&
        isName(parent)
      ) {
        // a property's key
      } else if (
        (ts.isVariableDeclaration(parent) ||
          ts.isBindingElement(parent) ||
          ts.isParameter(parent) ||
          ts.isFunctionDeclaration(parent) ||
          ts.isClassDeclaration(parent) ||
          ts.isInterfaceDeclaration(parent) ||
          ts.isTypeAliasDeclaration(parent) ||
          ts.isTypeParameterDeclaration(parent)) &&
        isName(parent)
      ) {
        declared.add(node.text);
      } else {
        used.add(node.text);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(parse("example.ts", code));
  for (const name of declared) used.delete(name);
  return used;
}

/** The variables an example declares at its top level (not `declare`d, not exported). */
function topLevelNames(code: string): string[] {
  const names: string[] = [];
  const collect = (name: ts.BindingName): void => {
    if (ts.isIdentifier(name)) names.push(name.text);
    else for (const element of name.elements) if (!ts.isOmittedExpression(element)) collect(element.name);
  };
  for (const statement of parse("example.ts", code).statements) {
    if (!ts.isVariableStatement(statement)) continue;
    const modifiers = ts.getModifiers(statement) ?? [];
    if (
      modifiers.some((m) => m.kind === ts.SyntaxKind.DeclareKeyword || m.kind === ts.SyntaxKind.ExportKeyword)
    )
      continue;
    for (const declaration of statement.declarationList.declarations) collect(declaration.name);
  }
  return names;
}

function importLines(code: string, names: Map<string, Export>): string[] {
  const bySpecifier = new Map<string, { name: string; typeOnly: boolean }[]>();
  for (const name of freeNames(code)) {
    const found = names.get(name);
    if (!found) continue;
    const list = bySpecifier.get(found.specifier) ?? [];
    list.push({ name, typeOnly: found.typeOnly });
    bySpecifier.set(found.specifier, list);
  }
  const byName = (a: { name: string }, b: { name: string }) =>
    a.name.toLowerCase() < b.name.toLowerCase() ? -1 : a.name.toLowerCase() > b.name.toLowerCase() ? 1 : 0;
  return [...bySpecifier]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([specifier, unsorted]) => {
      const list = unsorted.sort(byName);
      const allTypes = list.every((n) => n.typeOnly);
      const items = list.map((n) => (n.typeOnly && !allTypes ? `type ${n.name}` : n.name));
      return `import ${allTypes ? "type " : ""}{ ${items.join(", ")} } from "${specifier}";`;
    });
}

/** Biome's formatting and import order, so that `npm run lint` accepts the generated files as they are. */
function format(path: string, code: string): string {
  const biome = join(ROOT, "node_modules/.bin/biome");
  return execFileSync(biome, ["check", "--write", `--stdin-file-path=${path}`], {
    cwd: ROOT,
    input: code,
    encoding: "utf8",
  });
}

/** The generated folder's files, by path relative to the repository root, as this script writes them. */
export function generatedFiles(): Map<string, string> {
  const names = publicNames();
  const files = new Map<string, string>();
  const counts = new Map<string, number>();
  for (const example of tsdocExamples()) {
    const module = example.source
      .replace(/^src\//, "")
      .replace(/\.ts$/, "")
      .replaceAll("/", "-");
    const n = (counts.get(module) ?? 0) + 1;
    counts.set(module, n);
    const path = `${OUT_DIR}/${module}-${n}.ts`;
    const of = example.documents ? `${example.documents} in ${example.source}` : example.source;
    const imports = importLines(example.code, names);
    const body = [
      `// Generated by scripts/tsdoc-examples.ts from the TSDoc example of ${of}.`,
      "// Edit it there, then run `npx tsx scripts/tsdoc-examples.ts`.",
      "",
      ...(imports.length > 0 ? [...imports, ""] : []),
      example.code,
    ].join("\n");
    // A module, so that top-level `await` works; what it declares is exported, so that a result the
    // example only names (`const store = createIdbStore("models");`) is not an unused variable.
    const results = topLevelNames(example.code);
    const isModule = results.length > 0 || /^\s*(import|export)\b/m.test(body);
    const tail = isModule
      ? results.length > 0
        ? `\nexport { ${results.join(", ")} };\n`
        : ""
      : "\nexport {};\n";
    files.set(path, format(path, `${body}\n${tail}`));
  }
  return files;
}

/** The files now in the generated folder, by path relative to the repository root. */
export function committedFiles(): Map<string, string> {
  const dir = join(ROOT, OUT_DIR);
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return new Map();
  }
  return new Map(entries.sort().map((name) => [`${OUT_DIR}/${name}`, readFileSync(join(dir, name), "utf8")]));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const files = generatedFiles();
  rmSync(join(ROOT, OUT_DIR), { recursive: true, force: true });
  mkdirSync(join(ROOT, OUT_DIR), { recursive: true });
  for (const [path, text] of files) writeFileSync(join(ROOT, path), text);
  const unchecked = uncheckedExamples();
  process.stdout.write(`${files.size} TSDoc examples written to ${OUT_DIR}/\n`);
  if (unchecked.length > 0) {
    process.stderr.write(
      `Examples the type-check skips (write them as \`\`\`ts blocks):\n${unchecked.join("\n")}\n`,
    );
    process.exitCode = 1;
  }
}
