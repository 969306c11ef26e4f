"""Write .cog/openapi_schema.json for predict.py, the document Cog's HTTP server validates inputs with.

The `cog` CLI generates this file at build time, but the PyPI `cog` package (the coglet server) does
not: without it the server accepts any input and /openapi.json answers 503. This module builds the same
OpenAPI 3.0.2 document the CLI's generator does (pkg/schema/openapi_spec.go), from the predictor's own
signature as Cog's inspector reads it, so the committed file and the code cannot drift unnoticed:
tests/test_server.py regenerates it and compares.

    python -m tools.cog_schema             # rewrite .cog/openapi_schema.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = ROOT / ".cog" / "openapi_schema.json"


def _title(name: str) -> str:
    return " ".join(part.capitalize() for part in name.split("_"))


def _input_schema(info) -> dict:
    properties, required = {}, []
    for name, field in info.inputs.items():
        prop = {"x-order": field.order, "title": _title(name), **field.type.json_type()}
        if field.default is None:
            required.append(name)
        else:
            prop["default"] = field.default
        if field.description:
            prop["description"] = field.description
        properties[name] = prop
    schema = {"title": "Input", "type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def build_schema(module: str = "predict", predictor: str = "Predictor") -> dict:
    import cog
    from cog import _inspector

    sys.path.insert(0, str(ROOT))
    info = _inspector.create_predictor(module, predictor)
    ref = "#/components/schemas/"
    ok = {"description": "Successful Response", "content": {"application/json": {"schema": {}}}}
    invalid = {
        "description": "Validation Error",
        "content": {"application/json": {"schema": {"$ref": ref + "HTTPValidationError"}}},
    }
    return {
        "openapi": "3.0.2",
        "info": {"title": "Cog", "version": cog.__version__},
        "paths": {
            "/": {"get": {"summary": "Root", "operationId": "root__get", "responses": {"200": ok}}},
            "/health-check": {
                "get": {
                    "summary": "Healthcheck",
                    "operationId": "healthcheck_health_check_get",
                    "responses": {"200": ok},
                }
            },
            "/predictions": {
                "post": {
                    "summary": "Predict",
                    "description": "Run a single prediction on the model",
                    "operationId": "predict_predictions_post",
                    "requestBody": {
                        "content": {"application/json": {"schema": {"$ref": ref + "PredictionRequest"}}}
                    },
                    "responses": {
                        "200": {
                            "description": "Successful Response",
                            "content": {"application/json": {"schema": {"$ref": ref + "PredictionResponse"}}},
                        },
                        "422": invalid,
                    },
                }
            },
            "/predictions/{prediction_id}/cancel": {
                "post": {
                    "summary": "Cancel",
                    "operationId": "cancel_predictions__prediction_id__cancel_post",
                    "parameters": [
                        {
                            "required": True,
                            "schema": {"title": "Prediction Id", "type": "string"},
                            "name": "prediction_id",
                            "in": "path",
                        }
                    ],
                    "responses": {"200": ok, "422": invalid},
                }
            },
        },
        "components": {"schemas": _components(info, ref)},
    }


def _components(info, ref: str) -> dict:
    timestamp = {"type": "string", "format": "date-time"}
    return {
        "Input": _input_schema(info),
        "Output": info.output.json_type(),
        "PredictionRequest": {
            "title": "PredictionRequest",
            "type": "object",
            "properties": {"id": {"title": "Id", "type": "string"}, "input": {"$ref": ref + "Input"}},
        },
        "PredictionResponse": {
            "title": "PredictionResponse",
            "type": "object",
            "properties": {
                "input": {"$ref": ref + "Input"},
                "output": {"$ref": ref + "Output"},
                "id": {"title": "Id", "type": "string"},
                "version": {"title": "Version", "type": "string"},
                "created_at": {"title": "Created At", **timestamp},
                "started_at": {"title": "Started At", **timestamp},
                "completed_at": {"title": "Completed At", **timestamp},
                "status": {"title": "Status", "type": "string"},
                "error": {"title": "Error", "type": "string"},
                "logs": {"title": "Logs", "type": "string"},
                "metrics": {"title": "Metrics", "type": "object"},
            },
        },
        "Status": {
            "title": "Status",
            "description": "An enumeration.",
            "enum": ["starting", "processing", "succeeded", "canceled", "failed"],
            "type": "string",
        },
        "HTTPValidationError": {
            "title": "HTTPValidationError",
            "type": "object",
            "properties": {
                "detail": {"title": "Detail", "type": "array", "items": {"$ref": ref + "ValidationError"}}
            },
        },
        "ValidationError": {
            "title": "ValidationError",
            "required": ["loc", "msg", "type"],
            "type": "object",
            "properties": {
                "loc": {
                    "title": "Location",
                    "type": "array",
                    "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                },
                "msg": {"title": "Message", "type": "string"},
                "type": {"title": "Error Type", "type": "string"},
            },
        },
    }


def render(schema: dict) -> str:
    return json.dumps(schema, indent=2) + "\n"


if __name__ == "__main__":
    SCHEMA_PATH.parent.mkdir(exist_ok=True)
    SCHEMA_PATH.write_text(render(build_schema()))
    print(f"wrote {SCHEMA_PATH.relative_to(ROOT)}")
