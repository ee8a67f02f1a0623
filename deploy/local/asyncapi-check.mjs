// Validates AsyncAPI documents with @asyncapi/parser: the parser and Spectral ruleset that
// `asyncapi validate` (@asyncapi/cli) runs, without the CLI's ~440 MB of dependencies. Relative
// `$ref`s (pipeline-config/job-v1.schema.json, pipeline-config/bundle-event-v1.schema.json) are
// resolved from the document's directory. The parser does not check message examples against
// their payloads; deploy/local/validate.sh does that next to this script.
//
//   node deploy/local/asyncapi-check.mjs FILE...
//
// Prints every diagnostic (error, warning, info, hint) with its path; exits 1 when a document has
// an error or a warning (stricter than the CLI's default, which fails on errors only), 2 when the
// parser is missing. The parser comes from $STATE/node (deploy/local/tools.sh).
import { createRequire } from "node:module";
import { join, resolve } from "node:path";

const state = process.env.RECVAULT_STATE || join(process.env.XDG_CACHE_HOME || join(process.env.HOME, ".cache"), "recvault");
const require = createRequire(join(state, "node", "package.json"));
let Parser, fromFile, version;
try {
  ({ Parser, fromFile } = require("@asyncapi/parser"));
  version = require("@asyncapi/parser/package.json").version;
} catch (e) {
  console.error(`@asyncapi/parser not found under ${join(state, "node")}: run deploy/local/tools.sh (${e.message})`);
  process.exit(2);
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: asyncapi-check.mjs FILE...");
  process.exit(2);
}
const SEVERITY = ["error", "warning", "info", "hint"];
const parser = new Parser();
let failed = false;
for (const file of files) {
  const { document, diagnostics } = await fromFile(parser, resolve(file)).parse({ validateOptions: { allowedSeverity: { warning: true, info: true, hint: true } } });
  let errors = 0;
  let warnings = 0;
  for (const d of diagnostics) {
    const sev = SEVERITY[d.severity] ?? String(d.severity);
    if (d.severity === 0) errors++;
    if (d.severity === 1) warnings++;
    const where = d.path && d.path.length ? d.path.join(".") : "(document)";
    console.log(`${file}: ${sev} ${d.code}: ${where}: ${d.message}`);
  }
  if (!document || errors > 0 || warnings > 0) {
    failed = true;
    console.log(`${file}: INVALID (${errors} error(s), ${warnings} warning(s)) with @asyncapi/parser ${version}`);
  } else {
    console.log(`${file}: valid AsyncAPI ${document.version()} (@asyncapi/parser ${version}; ${diagnostics.length} info/hint diagnostic(s))`);
  }
}
process.exit(failed ? 1 : 0);
