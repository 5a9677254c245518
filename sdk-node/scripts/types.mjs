// Print the SDK's API types as JSON, for the drift test against the served OpenAPI document.
//
// Every interface of src/models.ts tagged `@schema <Component>` (a body) or
// `@query <METHOD> <path>` (an operation's query) is listed with its fields, inherited
// ones included, and whether each is optional:
//   {"Verification": {"schema": "VerificationPublic", "fields": {"id": false, ...}}}
// Usage: node scripts/types.mjs [file.ts]
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const file = resolve(process.argv[2] ?? join(root, "src/models.ts"));
const program = ts.createProgram([file], {
  strict: true,
  noEmit: true,
  target: ts.ScriptTarget.ES2022,
});
const checker = program.getTypeChecker();
const source = program.getSourceFile(file);
if (!source) throw new Error(`cannot read ${file}`);

const out = {};
ts.forEachChild(source, (node) => {
  if (!ts.isInterfaceDeclaration(node)) return;
  const entry = {};
  for (const tag of ts.getJSDocTags(node)) {
    const name = tag.tagName.text;
    if (name !== "schema" && name !== "query") continue;
    const value = ts.getTextOfJSDocComment(tag.comment)?.trim();
    if (!value) throw new Error(`${node.name.text}: @${name} needs a value`);
    entry[name] = value;
  }
  if (Object.keys(entry).length === 0) return;
  const fields = {};
  for (const prop of checker.getPropertiesOfType(checker.getTypeAtLocation(node.name))) {
    fields[prop.getName()] = (prop.getFlags() & ts.SymbolFlags.Optional) !== 0;
  }
  out[node.name.text] = { ...entry, fields };
});
process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
