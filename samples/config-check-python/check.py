"""Validates a YAML/JSON config against a JSON Schema with PyYAML and jsonschema (PyPI packages
from requirements.txt, installed once per requirements hash into the version's venv).

Payload: {"config": "<yaml text>", "schema": {...}}; without "schema" the built-in schema of a
service config below applies. Returns {"valid": bool, "errors": [{"path", "message"}, ...]}. An
unparseable config is an invalid config (one error with its line and column); an invalid schema
fails the invocation with kind InvalidSchema, since that is the caller's mistake.
"""
import jsonschema
import yaml

DEFAULT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "service config",
    "type": "object",
    "required": ["name", "port"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z][a-z0-9-]{0,62}$"},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "replicas": {"type": "integer", "minimum": 1, "default": 1},
        "log_level": {"enum": ["debug", "info", "warn", "error"]},
        "env": {"type": "object", "additionalProperties": {"type": "string"}},
        "healthcheck": {
            "type": "object",
            "required": ["path"],
            "additionalProperties": False,
            "properties": {
                "path": {"type": "string", "pattern": "^/"},
                "interval_s": {"type": "number", "exclusiveMinimum": 0},
            },
        },
    },
}


class InvalidSchema(ValueError):
    """The schema given in the payload is not a valid JSON Schema."""


def _path(error):
    """`$.healthcheck.path`, `$.items[2]`: where in the config the error is."""
    out = "$"
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def handler(event, context):
    schema = event.get("schema") or DEFAULT_SCHEMA
    schema_name = schema.get("title", "custom") if event.get("schema") else "service config (built-in)"
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as e:
        # The caller's mistake, not the config's: the invocation fails (kind InvalidSchema).
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path)
        raise InvalidSchema(f"the schema is not valid at ${where}: {e.message}") from None

    try:
        config = yaml.safe_load(event["config"])
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        return {
            "valid": False,
            "errors": [{"path": "$", "message": f"not valid YAML{where}: {problem}"}],
            "schema": schema_name,
        }

    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(config), key=lambda e: (_path(e), e.message))
    result = {
        "valid": not errors,
        "errors": [{"path": _path(e), "message": e.message} for e in errors],
        "schema": schema_name,
    }
    context.log("config checked", "info" if not errors else "warn", valid=not errors, errors=len(errors))
    return result
