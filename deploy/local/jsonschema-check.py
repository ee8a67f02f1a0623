#!/usr/bin/env python3
"""Python's `jsonschema` (the validator behind check-jsonschema) on a draft 2020-12 schema, with a
format checker: one verdict line per instance.

    $STATE/venv/bin/python deploy/local/jsonschema-check.py SCHEMA [INSTANCE...]

Prints `valid\\t<file>` or `invalid\\t<file>\\t<first error>` per instance. Exit 0 when the schema
is valid and every instance is, 1 when an instance is invalid, 2 when the schema itself is not a
valid 2020-12 schema or a file cannot be read. `date-time` is only checked when rfc3339-validator
is installed (deploy/local/tools.sh installs it); without it this script refuses to run rather
than silently accept every string.
"""

from __future__ import annotations

import json
import sys

try:
    import jsonschema
    from jsonschema import Draft202012Validator
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"jsonschema not importable ({e}): run deploy/local/tools.sh and use $STATE/venv/bin/python", file=sys.stderr)
    sys.exit(2)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    schema_path, instances = argv[0], argv[1:]
    try:
        import rfc3339_validator  # noqa: F401  (enables the date-time format check)
    except ImportError:
        print("rfc3339-validator missing: date-time would not be checked; run deploy/local/tools.sh", file=sys.stderr)
        return 2
    try:
        with open(schema_path, encoding="utf-8") as f:
            schema = json.load(f)
        Draft202012Validator.check_schema(schema)
    except (OSError, json.JSONDecodeError, jsonschema.SchemaError) as e:
        print(f"{schema_path}: {e}", file=sys.stderr)
        return 2
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    code = 0
    for path in instances:
        try:
            with open(path, encoding="utf-8") as f:
                instance = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            print(f"{path}: {e}", file=sys.stderr)
            return 2
        error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
        if error is None:
            print(f"valid\t{path}")
        else:
            where = "/" + "/".join(str(p) for p in error.absolute_path)
            message = " ".join(error.message.split())[:300]
            print(f"invalid\t{path}\t{where} {message}")
            code = 1
    if not instances:
        print(f"{schema_path}: valid draft 2020-12 schema (jsonschema {jsonschema_version()})")
    return code


def jsonschema_version() -> str:
    from importlib.metadata import version

    return version("jsonschema")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
