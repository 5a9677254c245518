// Print the SDK's API types as JSON, for the drift test against the served OpenAPI document.
//
// Every interface of src/models.ts tagged `@schema <Component>` is listed with its fields
// (inherited ones included) and whether each is optional:
//   {"VerificationCreated": {"schema": "VerificationCreated", "fields": {"id": false, ...}}}
// (true: optional). Usage: node scripts/types.mjs [file.ts]
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const file = resolve(process.argv[2] ?? join(root, "src/models.ts"));
const program = ts.createProgram([file], { strict: true, noEmit: true, target: ts.ScriptTarget.ES2022 });
const checker = program.getTypeChecker();
const source = program.getSourceFile(file);
if (!source) throw new Error(`cannot read ${file}`);

const out = {};
ts.forEachChild(source, (node) => {
  if (!ts.isInterfaceDeclaration(node)) return;
  const tag = ts.getJSDocTags(node).find((t) => t.tagName.text === "schema");
  if (!tag) return;
  const schema = ts.getTextOfJSDocComment(tag.comment)?.trim();
  if (!schema) throw new Error(`${node.name.text}: @schema needs a component name`);
  const type = checker.getTypeAtLocation(node.name);
  const fields = {};
  for (const prop of checker.getPropertiesOfType(type)) {
    fields[prop.getName()] = (prop.getFlags() & ts.SymbolFlags.Optional) !== 0;
  }
  out[node.name.text] = { schema, fields };
});
process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
