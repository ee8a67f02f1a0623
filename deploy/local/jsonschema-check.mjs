// Ajv (the JavaScript ecosystem's JSON Schema validator) in strict mode with ajv-formats: compiles a
// draft 2020-12 schema and validates instances against it, one verdict line per instance.
//
//   node deploy/local/jsonschema-check.mjs SCHEMA [INSTANCE...]
//
// Prints `valid\t<file>` or `invalid\t<file>\t<first error>` per instance; with no instance only
// compiles the schema. Exit 0 when the schema compiles and every instance is valid, 1 when an
// instance is invalid, 2 when the schema does not compile in strict mode (an unknown `format`
// such as uint32, an unknown keyword, ...) or a file cannot be read.
// Ajv comes from $STATE/node (deploy/local/tools.sh), STATE = ${RECVAULT_STATE:-${XDG_CACHE_HOME:-$HOME/.cache}/recvault}.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const state = process.env.RECVAULT_STATE || join(process.env.XDG_CACHE_HOME || join(process.env.HOME, ".cache"), "recvault");
const require = createRequire(join(state, "node", "package.json"));
let Ajv2020, addFormats;
try {
  Ajv2020 = require("ajv/dist/2020").default;
  addFormats = require("ajv-formats").default;
} catch (e) {
  console.error(`ajv not found under ${join(state, "node")}: run deploy/local/tools.sh (${e.message})`);
  process.exit(2);
}

const [schemaPath, ...instances] = process.argv.slice(2);
if (!schemaPath) {
  console.error("usage: jsonschema-check.mjs SCHEMA [INSTANCE...]");
  process.exit(2);
}
let validate;
try {
  // strict: true = strictSchema, strictNumbers, strictTypes, strictTuples, strictRequired all on.
  const ajv = new Ajv2020({ strict: true, allErrors: false });
  addFormats(ajv);
  validate = ajv.compile(JSON.parse(readFileSync(schemaPath, "utf8")));
} catch (e) {
  console.error(`${schemaPath}: does not compile with Ajv ${require("ajv/package.json").version} in strict mode: ${e.message}`);
  process.exit(2);
}
if (instances.length === 0) {
  console.log(`${schemaPath}: compiles with Ajv ${require("ajv/package.json").version} (draft 2020-12, strict, ajv-formats)`);
}
let code = 0;
for (const file of instances) {
  let data;
  try {
    data = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    console.error(`${file}: ${e.message}`);
    process.exit(2);
  }
  if (validate(data)) {
    console.log(`valid\t${file}`);
  } else {
    const e = validate.errors[0];
    console.log(`invalid\t${file}\t${e.instancePath || "/"} ${e.message}`.replace(/\n/g, " "));
    code = 1;
  }
}
process.exit(code);
