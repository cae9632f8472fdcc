"""``aqe generate api`` in-process on a small WSGI app: cases, sequences, the rules.

The app (plain WSGI, no framework) keeps notes in memory; its DELETE answers 204 but
keeps the note (a seeded bug the create/read/delete sequence must find), and ``/flaky``
answers 200 and 500 in turn (its cases must be dropped, not kept).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from aqe._apigen import Request, generate
from aqe._exceptions import UsageError

SPEC = """
openapi: 3.0.3
info: {title: Notes, version: "2"}
paths:
  /notes:
    post:
      tags: [notes]
      operationId: createNote
      security: [{token: []}]
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: "#/components/schemas/NoteIn"}
      responses:
        "201":
          description: made
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Note"}
        "400": {description: bad}
        "401": {description: no token}
  /notes/{note_id}:
    get:
      tags: [notes]
      operationId: getNote
      parameters:
        - {name: note_id, in: path, required: true, schema: {type: integer, minimum: 1}}
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Note"}
        "400": {description: bad id}
        "404": {description: missing}
    delete:
      tags: [notes]
      operationId: deleteNote
      security: [{token: []}]
      parameters:
        - {name: note_id, in: path, required: true, schema: {type: integer, minimum: 1}}
      responses:
        "204": {description: gone}
        "400": {description: bad id}
        "401": {description: no token}
        "404": {description: missing}
  /flaky:
    get:
      tags: [meta]
      responses:
        "200": {description: ok}
components:
  securitySchemes:
    token: {type: http, scheme: bearer}
  schemas:
    NoteIn:
      type: object
      required: [title]
      properties:
        title: {type: string, minLength: 1, maxLength: 10}
        done: {type: boolean, nullable: true}
    Note:
      allOf:
        - {$ref: "#/components/schemas/NoteIn"}
        - {type: object, required: [id], properties: {id: {type: integer}}}
"""

APP = """
import json

NOTES = {}
CALLS = {"flaky": 0}


def _answer(start, status, body=None):
    data = b"" if body is None else json.dumps(body).encode()
    headers = [("Content-Type", "application/json")] if body is not None else []
    start(status, headers)
    return [data]


def app(environ, start):
    method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
    if path == "/flaky":
        CALLS["flaky"] += 1
        return _answer(start, "200 OK" if CALLS["flaky"] % 2 else "500 Oops")
    if path == "/notes" and method == "POST":
        if environ.get("HTTP_AUTHORIZATION") != "Bearer s3cret":
            return _answer(start, "401 Unauthorized")
        try:
            size = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(size))
            title, done = body["title"], body.get("done")
            assert isinstance(title, str) and 1 <= len(title) <= 10
            assert done is None or isinstance(done, bool)
        except Exception:
            return _answer(start, "400 Bad Request", {"error": "bad body"})
        note = {"id": len(NOTES) + 1, "title": title, "done": done}
        NOTES[note["id"]] = note
        return _answer(start, "201 Created", note)
    if path.startswith("/notes/"):
        raw = path.rsplit("/", 1)[1]
        if not raw.isdigit() or int(raw) < 1:
            return _answer(start, "400 Bad Request", {"error": "bad id"})
        if method == "DELETE":
            if environ.get("HTTP_AUTHORIZATION") != "Bearer s3cret":
                return _answer(start, "401 Unauthorized")
            return _answer(start, "204 No Content" if int(raw) in NOTES else "404 Not Found")
        if int(raw) in NOTES:
            return _answer(start, "200 OK", NOTES[int(raw)])
        return _answer(start, "404 Not Found", None)
    return _answer(start, "404 Not Found")
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "openapi.yaml").write_text(SPEC, encoding="utf-8")
    name = f"notes_app_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(APP, encoding="utf-8")
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("API_TOKEN", "s3cret")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _generate(project: Path, **options: object) -> object:
    app = next(project.glob("notes_app_*.py")).stem + ":app"
    request = Request(spec=project / "openapi.yaml", root=project, app=app, **options)  # type: ignore[arg-type]
    return generate(request)


def test_the_suite_has_a_conftest_and_a_file_per_tag_with_readable_tables(project: Path) -> None:
    result = _generate(project)
    out = project / "tests" / "api"
    assert sorted(p.name for p in out.iterdir()) == [
        "conftest.py",
        "test_api_meta.py",
        "test_api_notes.py",
    ]
    notes = (out / "test_api_notes.py").read_text(encoding="utf-8")
    for text in (notes, (out / "conftest.py").read_text(encoding="utf-8")):
        ast.parse(text)
        assert "aqe generate api openapi.yaml --app notes_app_" in text  # how to regenerate
        assert "s3cret" not in text  # credentials come from the environment only
    assert 'id="title at maxLength 10"' in notes
    assert 'id="title longer than maxLength 10"' in notes
    assert 'id="malformed JSON"' in notes
    assert 'id="no credential"' in notes
    assert "def note_id(api, check):" in notes  # a fixture makes the note cases run on
    assert "def test_notes_lifecycle(api, check):" in notes
    assert result.written and result.operations == 4  # type: ignore[attr-defined]


def test_cases_whose_verdict_changes_are_dropped_and_reported(project: Path) -> None:
    result = _generate(project)
    dropped = dict(result.dropped)  # type: ignore[attr-defined]
    assert dropped == {"GET /flaky [plain call]": "answered 200 then 500"}
    meta = (project / "tests" / "api" / "test_api_meta.py").read_text(encoding="utf-8")
    assert "pytest.param" not in meta
    assert "#   GET /flaky [plain call]: answered 200 then 500" in meta


def test_the_broken_delete_is_found_by_the_inferred_sequence(project: Path) -> None:
    result = _generate(project)
    failing = dict(result.failing)  # type: ignore[attr-defined]
    assert list(failing) == ["test_notes_lifecycle"]
    assert "still there after the delete" in failing["test_notes_lifecycle"]


def test_a_dry_run_writes_nothing(project: Path) -> None:
    result = _generate(project, dry_run=True)
    assert not (project / "tests").exists()
    assert "conftest.py" in result.files  # type: ignore[attr-defined]


def test_a_failing_app_import_is_one_usage_line(project: Path) -> None:
    (project / "broken_app.py").write_text("raise RuntimeError('no database')\n")
    request = Request(spec=project / "openapi.yaml", root=project, app="broken_app:app")
    with pytest.raises(
        UsageError,
        match=r"^cannot import the app 'broken_app:app': "
        r"RuntimeError: no database$",
    ):
        generate(request)


def test_a_file_aqe_did_not_write_is_never_overwritten(project: Path) -> None:
    (project / "tests" / "api").mkdir(parents=True)
    (project / "tests" / "api" / "conftest.py").write_text("# mine\n")
    with pytest.raises(UsageError, match="was not written by aqe generate api"):
        _generate(project)


EXPLORE_SPEC = """
openapi: 3.1.0
info: {title: Mod, version: "1"}
paths:
  /mod:
    get:
      operationId: mod
      parameters:
        - {name: n, in: query, required: true, schema: {type: integer}}
      responses:
        "200": {description: ok}
"""

EXPLORE_APP = """
from urllib.parse import parse_qs


def app(environ, start):
    n = int(parse_qs(environ["QUERY_STRING"])["n"][0])  # n missing: a KeyError escapes
    start("500 Oops" if n >= 1000 else "200 OK", [])
    return [b""]
"""


def test_explore_writes_the_shrunk_failure_as_a_plain_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "openapi.yaml").write_text(EXPLORE_SPEC, encoding="utf-8")
    name = f"mod_app_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(EXPLORE_APP, encoding="utf-8")
    monkeypatch.setattr(sys, "path", list(sys.path))
    request = Request(
        spec=tmp_path / "openapi.yaml",
        root=tmp_path,
        app=f"{name}:app",
        explore=True,
        budget=20,
        dry_run=True,
    )
    result = generate(request)
    assert result.warnings == [] and result.explored == 1
    assert dict(result.failing)["GET /mod [n missing]"].startswith("KeyError: ")
    text = result.files["test_api_mod.py"]
    assert 'pytest.param("/mod", {"params": {"n": 1000}}, id="server error 500"),' in text
    assert "def test_mod_explored(api, check, url, options):" in text
