"""Reading OpenAPI descriptions: what is refused (one line each), what is listed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aqe._apigen._contract import Contract, load_spec
from aqe._apigen._spec import load, operations
from aqe._exceptions import UsageError

SPEC_30 = """
openapi: 3.0.3
info: {title: Notes, version: "1"}
security: [{token: []}]
paths:
  /notes/{note_id}:
    parameters:
      - {$ref: "#/components/parameters/NoteId"}
    get:
      tags: [notes]
      operationId: getNote
      security: []
      parameters:
        - {name: verbose, in: query, schema: {type: boolean}}
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Note"}
    put:
      requestBody:
        $ref: "#/components/requestBodies/NoteBody"
      responses:
        "200": {description: ok}
components:
  securitySchemes:
    token: {type: http, scheme: bearer}
  parameters:
    NoteId: {name: note_id, in: path, required: true, schema: {type: integer, minimum: 1}}
  requestBodies:
    NoteBody:
      required: true
      content:
        application/json:
          schema: {$ref: "#/components/schemas/Note"}
          example: {title: first}
  schemas:
    Note:
      type: object
      required: [title]
      properties:
        title: {type: string, nullable: true}
        rank: {type: integer, minimum: 0, exclusiveMinimum: true}
"""


def _write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_swagger_2_is_refused_in_one_line(tmp_path: Path) -> None:
    path = _write(tmp_path, json.dumps({"swagger": "2.0", "paths": {}}), "s.json")
    with pytest.raises(UsageError, match=r"is Swagger 2\.0 \(OpenAPI 2\.0\): only OpenAPI 3\.0"):
        load(path)


def test_an_invalid_description_names_the_json_pointer_of_its_error(tmp_path: Path) -> None:
    broken = SPEC_30.replace('"200": {description: ok}', '"200": {describe: ok}')
    with pytest.raises(UsageError) as caught:
        load(_write(tmp_path, broken))
    message = str(caught.value)
    assert "\n" not in message
    assert "at /paths/~1notes~1{note_id}/put/responses/200" in message


def test_not_yaml_and_not_openapi_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="neither JSON nor YAML"):
        load(_write(tmp_path, "a: [unclosed"))
    with pytest.raises(UsageError, match=r"not OpenAPI 3\.0 or 3\.1 \(openapi: '4\.0'\)"):
        load(_write(tmp_path, "openapi: '4.0'\ninfo: {title: x, version: '1'}\npaths: {}"))


def test_operations_follow_refs_and_path_level_parameters(tmp_path: Path) -> None:
    contract = load(_write(tmp_path, SPEC_30))
    ops = {op.name: op for op in operations(contract)}
    get, put = ops["GET /notes/{note_id}"], ops["PUT /notes/{note_id}"]
    assert [(p.name, p.where, p.required) for p in get.parameters] == [
        ("note_id", "path", True),
        ("verbose", "query", False),
    ]
    assert (get.op_id, get.group, get.secured) == ("getNote", "notes", False)
    assert (put.op_id, put.group, put.secured) == ("put_notes_note_id", "notes", True)
    assert put.body is not None and put.body_required and put.body_example == {"title": "first"}


def test_openapi_30_nullable_and_boolean_bounds_become_json_schema(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, SPEC_30))
    note = spec["components"]["schemas"]["Note"]["properties"]
    assert note["title"]["type"] == ["string", "null"]
    assert note["rank"] == {"type": "integer", "exclusiveMinimum": 0}
    contract = Contract(spec)
    assert contract.errors({"title": None}, "#/components/schemas/Note") == []
    assert contract.errors({"title": "a", "rank": 0}, "#/components/schemas/Note") == [
        "rank: 0 is less than or equal to the minimum of 0"
    ]


@pytest.mark.parametrize(
    ("ref", "says"),
    [
        ("#/components/schemas/Nope", "does not resolve in this document"),
        ("#/components/schemas/Note/properties/missing", "does not resolve in this document"),
        ("common.yaml#/Note", "is not in this document: only local $refs (#/...) are read"),
    ],
)
def test_a_ref_that_does_not_resolve_names_where_it_stands(
    tmp_path: Path, ref: str, says: str
) -> None:
    spec = {
        "openapi": "3.1.0",
        "info": {"title": "x", "version": "1"},
        "paths": {
            "/a/{id}": {
                "get": {
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {"application/json": {"schema": {"$ref": ref}}},
                        }
                    }
                }
            }
        },
        "components": {"schemas": {"Note": {"type": "object", "properties": {}}}},
    }
    with pytest.raises(UsageError) as caught:
        load(_write(tmp_path, json.dumps(spec), "s.json"))
    message = str(caught.value)
    assert "\n" not in message and len(message) < 300
    where = "/paths/~1a~1{id}/get/responses/200/content/application~1json/schema/$ref"
    assert f"at {where}: {ref!r} {says}" in message


def test_a_ref_inside_an_example_is_data_not_a_reference(tmp_path: Path) -> None:
    spec = {
        "openapi": "3.1.0",
        "info": {"title": "x", "version": "1"},
        "paths": {
            "/a": {
                "post": {
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"default": {"type": "string"}},
                                },
                                "example": {"$ref": "not/a/reference"},
                                "examples": {"one": {"value": {"$ref": "#/nowhere"}}},
                            }
                        }
                    },
                    "responses": {"204": {"description": "done"}},
                }
            }
        },
    }
    assert operations(load(_write(tmp_path, json.dumps(spec), "s.json")))
