"""Replicate's published OpenAPI schema as a checker for requests and answers seen by the test stand-ins.

The stand-ins (``tests/replicate_standin.py``, the fake upstream in ``tests/test_proxy.py``) call
``check_request`` on every API request that reaches them and ``check_response`` on every answer they
give, and collect the messages; the tests fail when any was collected. Bodies, parameters and headers
are validated by ``jsonschema`` against the schema in ``tests/fixtures/replicate-openapi.json``; this
module only finds the operation a request is for and hands the right piece of the document to it.

Where the schema is silent, the official clients decide:
- error answers the schema does not list must be RFC 9457 problem documents
  (``application/problem+json``), which is what replicate-python's ``ReplicateError.from_response``
  and replicate-javascript's ``ApiError`` read (``title``, ``detail``, ``status``);
- ``Authorization`` may be ``Bearer <token>`` (the schema's ``bearerAuth``) or ``Token <token>`` (the
  schema's own ``files.create`` curl example, and what replicate-python sent before 0.15).
"""

from __future__ import annotations

import json
import re
from email.parser import BytesParser
from email.policy import HTTP
from functools import cache
from pathlib import Path

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SCHEMA_FILE = Path(__file__).parent / "fixtures" / "replicate-openapi.json"
SCHEMA_SHA256 = "4500bf86453ef1ab65a9e133929ce97f468cff9aa62ab7512d00fd588abb8b39"
URI = "urn:replicate-openapi"
API_PREFIX = "/v1"  # the document's server is https://api.replicate.com/v1
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
AUTHORIZATION = re.compile(r"(Bearer|Token) \S+")

# RFC 9457 problem details, the fields the official clients read.
PROBLEM = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "required": ["detail", "status"],
}


def _nullable_to_31(node: object) -> None:
    """``nullable: true`` is OpenAPI 3.0; in 3.1 (JSON Schema 2020-12) it is ignored, so ``null`` would
    fail ``type: string``. The API sends ``"error": null``; rewrite to ``type: [T, "null"]``."""
    if isinstance(node, dict):
        if node.pop("nullable", False) and isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        for value in node.values():
            _nullable_to_31(value)
    elif isinstance(node, list):
        for value in node:
            _nullable_to_31(value)


@cache
def document() -> dict:
    """The vendored schema, adjusted as tests/fixtures/README.md says."""
    doc = json.loads(SCHEMA_FILE.read_text())
    # `query` (models.search, an HTTP QUERY method) is not an OpenAPI 3.1 operation and some validators
    # reject the whole document over it; no client of ours calls it.
    doc["paths"]["/models"].pop("query", None)
    _nullable_to_31(doc)
    # A prediction's `version` is `oneOf: [string, enum ["hidden"]]`, and "hidden" (what the document
    # itself says official models answer) is a string too, so it matches both and fails `oneOf`.
    version = doc["components"]["schemas"]["schemas_prediction_response"]["properties"]["version"]
    version["anyOf"] = version.pop("oneOf")
    return doc


@cache
def _registry() -> Registry:
    return Registry().with_resource(URI, Resource(document(), specification=DRAFT202012))


def _pointer(*parts: str) -> str:
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def _validate(pointer: str | None, instance: object, schema: dict | None = None) -> list[str]:
    """Messages from jsonschema for ``instance`` against the document at ``pointer`` (or ``schema``)."""
    target = schema if schema is not None else {"$ref": f"{URI}#{pointer}"}
    validator = Draft202012Validator(target, registry=_registry(), format_checker=FormatChecker())
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in validator.iter_errors(instance)
    ]


@cache
def _templates() -> list[tuple[re.Pattern, str]]:
    out = []
    for template in document()["paths"]:
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        out.append((re.compile(pattern), template))
    return out


def operation(method: str, path: str) -> tuple[str, dict] | None:
    """(path template, operation object) for a request path such as ``/v1/predictions/abc``."""
    path = path.split("?", 1)[0]
    if not path.startswith(API_PREFIX + "/"):
        return None
    path = path[len(API_PREFIX) :]
    for pattern, template in _templates():
        if pattern.fullmatch(path) and (op := document()["paths"][template].get(method.lower())):
            return template, op
    return None


def _parameters(template: str, method: str) -> list[tuple[str, dict]]:
    """(pointer, parameter object) of an operation, $refs followed (the document has no path-level ones)."""
    out = []
    for i, param in enumerate(document()["paths"][template][method].get("parameters", [])):
        pointer = _pointer("paths", template, method, "parameters", str(i))
        if "$ref" in param:
            pointer = param["$ref"].removeprefix("#")
            param = _resolve(pointer)
        out.append((pointer, param))
    return out


def _resolve(pointer: str) -> dict:
    node: object = document()
    for part in pointer.strip("/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]  # type: ignore[index]
    return node  # type: ignore[return-value]


def _multipart(content_type: str, body: bytes) -> dict | None:
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    if not message.is_multipart():
        return None
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if name == "metadata":
            fields[name] = json.loads(payload)
        else:  # binary parts are `type: string, format: binary`; their bytes are not JSON strings
            fields[name] = payload.decode("latin-1")
    return fields


def check_request(method: str, path: str, headers, body: bytes | None) -> list[str]:
    """Everything wrong with an API request, as (short) messages; [] when it follows the schema."""
    where = f"{method} {path.split('?', 1)[0]}"
    found = operation(method, path)
    if found is None:
        return [f"{where}: not an operation of Replicate's API"]
    template, op = found
    errors = []
    if not AUTHORIZATION.fullmatch(headers.get("Authorization") or ""):
        errors.append(f"{where}: no `Authorization: Bearer <token>` (bearerAuth)")
    method_key = method.lower()
    for pointer, param in _parameters(template, method_key):
        if param["in"] != "header" or (value := headers.get(param["name"])) is None:
            continue
        errors += [f"{where} header {param['name']}: {m}" for m in _validate(pointer + "/schema", value)]
    if "requestBody" in op:
        kind = (headers.get("Content-Type") or "").split(";", 1)[0].strip()
        content = op["requestBody"]["content"]
        if kind not in content:
            return [*errors, f"{where}: body is {kind or 'untyped'}, the schema takes {sorted(content)}"]
        pointer = _pointer("paths", template, method_key, "requestBody", "content", kind, "schema")
        try:
            if kind == "application/json":
                instance = json.loads(body or b"")
            else:
                instance = _multipart(headers.get("Content-Type", ""), body or b"")
        except (ValueError, UnicodeDecodeError) as exc:
            return [*errors, f"{where}: body is not {kind}: {exc}"]
        errors += [f"{where} body {m}" for m in _validate(pointer, instance)]
    elif body:
        errors.append(f"{where}: the operation takes no body, got {len(body)} bytes")
    return errors


def check_response(method: str, path: str, status: int, content_type: str, body: bytes) -> list[str]:
    """Everything wrong with an API answer; errors the schema does not list must be problem+json."""
    where = f"{method} {path.split('?', 1)[0]} → {status}"
    found = operation(method, path)
    if found is None:
        return [f"{where}: answered a request that is not an operation of Replicate's API"]
    template, op = found
    kind = content_type.split(";", 1)[0].strip()
    declared = op.get("responses", {}).get(str(status))
    try:
        instance = json.loads(body) if body else None
    except ValueError:
        return [f"{where}: the body is not JSON"]
    if declared is None:
        if status < 400:
            return [f"{where}: the schema lists {sorted(op.get('responses', {}))} for this operation"]
        if kind != "application/problem+json":
            return [f"{where}: an error must be application/problem+json, not {kind!r}"]
        return [f"{where} {m}" for m in _validate(None, instance, PROBLEM)]
    content = declared.get("content") or {}
    if kind not in content:
        return [f"{where}: answered {kind!r}, the schema says {sorted(content)}"]
    pointer = _pointer("paths", template, method.lower(), "responses", str(status), "content", kind, "schema")
    errors = [f"{where} {m}" for m in _validate(pointer, instance)]
    if status >= 400:
        errors += [f"{where} {m}" for m in _validate(None, instance, PROBLEM)]
    return errors
