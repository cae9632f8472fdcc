"""The cases of each operation: valid requests, invalid ones, credentials, sequences.

A case is data (what to send, what to expect); ``_probe`` sends it and ``_render`` writes
it, so what was checked at generation is what the written test does.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from ._contract import Contract
from ._spec import Operation, Parameter
from ._values import as_query, boundaries, deref, invalid, types, valid

MAX_VALID = 12
MAX_INVALID = 18


@dataclass(frozen=True)
class Step:
    """One call of a sequence; ``url`` may name saved values as ``{name}``."""

    var: str
    op: str
    url: str
    options: dict[str, Any]
    expect: str  # "2xx", "gone"
    #: name -> (where, path) with where "body" (JSON keys) or "header" (a name).
    save: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    #: The body sent earlier whose fields this response must hold unchanged.
    same_as: Any = None
    anonymous: bool = False


@dataclass(frozen=True)
class Case:
    """One request of a parametrize table."""

    op: str  # "POST /items"
    kind: str  # "accepts", "rejects", "credentials", "unknown", "explored"
    label: str
    url: str
    options: dict[str, Any]
    expect: str  # "success", "rejected", "any"
    #: Calls that make what ``{name}`` placeholders in url and options name (a created item).
    setup: tuple[Step, ...] = ()


@dataclass(frozen=True)
class Flow:
    name: str
    doc: str
    group: str
    steps: tuple[Step, ...]


def _fill(path: str, values: dict[str, Any]) -> str:
    """``path`` with its parameters' values, URL-quoted; ``{name}`` placeholders stay."""

    def one(match: re.Match[str]) -> str:
        value = str(values.get(match.group(1), match.group(0)))
        if value.startswith("{") and value.endswith("}"):
            return value
        return urllib.parse.quote(value, safe="")

    return re.sub(r"\{([^}]+)\}", one, path)


def _scalar_ok(contract: Contract, param: Parameter, value: Any) -> bool:
    if not param.pointer:
        return True
    return not contract.errors(value, param.pointer)


def _as_text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


class Builder:
    """Cases for the operations of one description."""

    def __init__(self, contract: Contract, schemes: dict[str, Any]) -> None:
        self.contract = contract
        self.schemes = schemes
        #: Collection (``items``) -> its create operation and the id field it answers.
        self.creates: dict[str, tuple[Operation, str]] = {}
        #: Item path (``/items/{item_id}``) -> (collection, path parameter).
        self.owners: dict[str, tuple[str, str]] = {}

    def learn(self, ops: list[Operation]) -> None:
        """Which operations create what the others' ids name (for cases on real items)."""
        for create, _item, param, item_path in _pairs(ops):
            id_field = _id_field(self, create, param)
            if id_field is not None:
                self.creates[_collection(create.path)] = (create, id_field)
                self.owners[item_path] = (_collection(create.path), param)

    def _var(self, collection: str, param: str) -> str:
        if param.lower() in ("id", "key", "uuid"):
            return _ident(re.sub(r"(es|s)$", "", collection)) + "_id"
        return _ident(param)

    def creator(self, collection: str, var: str) -> tuple[Step, ...]:
        """The calls that create one resource of ``collection``, its id saved as ``var``."""
        create, id_field = self.creates[collection]
        before, body = _dependencies(self, create, self.body(create, full=True), self.creates)
        url, options = self.request(create, self.param_values(create, False), body)
        save: dict[str, tuple[str, tuple[str, ...]]] = {var: ("body", (id_field,))}
        return (
            *before,
            Step(
                _ident(collection.rstrip("s")) or "made",
                create.name,
                url,
                options,
                "2xx",
                save=save,
            ),
        )

    def attach(self, op: Operation, cases: list[Case]) -> list[Case]:
        """Cases on the made-up ids that a created resource can stand for, moved onto one.

        The path's id (``/items/1``) and body fields that name other resources
        (``item_id``) become ``{name}`` placeholders filled, in the test, by a fixture
        that creates the resource; a case that changed that value keeps its own.
        """
        path_refs = []
        for item_path, (collection, param) in self.owners.items():
            if op.path == item_path or op.path.startswith(item_path + "/"):
                path_refs.append((param, collection))
        defaults = {
            p.name: v for p, v in self.param_values(op, full=False).items() if p.where == "path"
        }
        default_url = _fill(op.path, {k: _as_text(v) for k, v in defaults.items()})
        body = self.body(op, full=True)
        _, patched = _dependencies(self, op, body, self.creates)
        body_refs = (
            {k: v for k, v in patched.items() if body.get(k) != v}
            if isinstance(patched, dict) and isinstance(body, dict)
            else {}
        )
        if not path_refs and not body_refs:
            return cases
        out = []
        for case in cases:
            url, options, setup = case.url, dict(case.options), {}
            if path_refs and url == default_url:
                names = {}
                for param, collection in path_refs:
                    var = self._var(collection, param)
                    names[param] = "{" + var + "}"
                    setup[var] = self.creator(collection, var)
                url = _fill(op.path, {**{k: _as_text(v) for k, v in defaults.items()}, **names})
            sent = options.get("json")
            if isinstance(sent, dict) and isinstance(body, dict):
                changed = dict(sent)
                for key, placeholder in body_refs.items():
                    if key in sent and repr(sent[key]) == repr(body[key]):  # True != 1 here
                        var = placeholder.strip("{}")
                        collection = next(
                            c
                            for c in self.creates
                            if c
                            in (
                                var.removesuffix("_id"),
                                var.removesuffix("_id") + "s",
                                var.removesuffix("_id") + "es",
                            )
                        )
                        changed[key] = placeholder
                        setup[var] = self.creator(collection, var)
                options["json"] = changed
            steps = tuple(step for steps in setup.values() for step in steps)
            out.append(Case(case.op, case.kind, case.label, url, options, case.expect, steps))
            if case.kind == "accepts" and case is cases[0] and path_refs:
                out.append(
                    Case(
                        case.op,
                        "unknown",
                        "an id that names nothing",
                        _fill(
                            op.path,
                            {
                                **{k: _as_text(v) for k, v in defaults.items()},
                                **{p: _unknown(self, op, p) for p, _ in path_refs},
                            },
                        ),
                        dict(case.options),
                        "success",
                    )
                )
        return out

    def param_values(self, op: Operation, full: bool) -> dict[Parameter, Any]:
        values = {}
        for param in op.parameters:
            if param.where == "cookie" or (not param.required and not full):
                continue
            if param.example is not None and _scalar_ok(self.contract, param, param.example):
                values[param] = param.example
            else:
                values[param] = valid(self.contract, param.schema, param.name)
        return values

    def request(
        self,
        op: Operation,
        values: dict[Parameter, Any],
        body: Any = ...,
        raw: bytes | None = None,
        content_type: str | None = None,
    ) -> tuple[str, dict[str, Any]]:
        path_values = {p.name: _as_text(v) for p, v in values.items() if p.where == "path"}
        url = _fill(op.path, path_values)
        options: dict[str, Any] = {}
        query = {p.name: _as_text(v) for p, v in values.items() if p.where == "query"}
        if query:
            options["params"] = query
        headers = {p.name: str(_as_text(v)) for p, v in values.items() if p.where == "header"}
        if content_type:
            headers["Content-Type"] = content_type
        if headers:
            options["headers"] = headers
        if raw is not None:
            options["content"] = raw
        elif body is not ...:
            options["json"] = body
        return url, options

    def body(self, op: Operation, full: bool) -> Any:
        if op.body is None:
            return ...
        if op.body_example is not None and not full and self.body_ok(op, op.body_example):
            return op.body_example
        value = valid(self.contract, op.body[1], full=full)
        if not full and not op.body_required and value in ({}, None):
            return ...
        return value

    def body_ok(self, op: Operation, value: Any) -> bool:
        return op.body is not None and not self.contract.errors(value, op.body[2])

    def valid_cases(self, op: Operation) -> list[Case]:
        cases: list[Case] = []
        seen: set[str] = set()

        def add(label: str, values: dict[Parameter, Any], body: Any) -> None:
            if body is not ... and op.body is not None and not self.body_ok(op, body):
                return
            url, options = self.request(op, values, body)
            key = repr((url, sorted(options.items(), key=str)))
            if key not in seen and len(cases) < MAX_VALID:
                seen.add(key)
                cases.append(Case(op.name, "accepts", label, url, options, "success"))

        required = self.param_values(op, full=False)
        full = self.param_values(op, full=True)
        base_body = self.body(op, full=False)
        add("required only" if op.parameters or op.body else "plain call", required, base_body)
        add("all fields", full, self.body(op, full=True))
        if op.body_example is not None:
            add("documented example", required, op.body_example)
        for param in op.parameters:
            if param.where in ("cookie", "path"):
                continue
            for label, value in boundaries(self.contract, param.schema):
                if _scalar_ok(self.contract, param, value):
                    add(f"{param.name} {label}", {**required, param: value}, base_body)
        full_body = self.body(op, full=True)
        if op.body is not None and isinstance(full_body, dict):
            schema = deref(self.contract, op.body[1])
            for name, sub in (schema.get("properties") or {}).items():
                for label, value in boundaries(self.contract, sub):
                    add(f"{name} {label}", required, {**full_body, name: value})
        return cases

    def invalid_cases(self, op: Operation) -> list[Case]:
        cases: list[Case] = []
        required = self.param_values(op, full=False)
        base_body = self.body(op, full=True)

        def add(label: str, values: dict[Parameter, Any], body: Any = ..., **raw: Any) -> None:
            if len(cases) >= MAX_INVALID:
                return
            url, options = self.request(op, values, body, **raw)
            cases.append(Case(op.name, "rejects", label, url, options, "rejected"))

        for param in op.parameters:
            if param.where == "cookie":
                continue
            kind = (types(deref(self.contract, param.schema)) or ["string"])[0]
            if param.required and param.where in ("query", "header"):
                add(f"{param.name} missing", {p: v for p, v in required.items() if p is not param})
            for label, value in invalid(self.contract, param.schema):
                text = as_query(kind, label, value)
                if text is None or _scalar_ok(self.contract, param, _coerced(kind, text[1])):
                    continue
                add(f"{param.name} {text[0]}", {**required, param: text[1]}, self.body(op, False))
        if op.body is not None and isinstance(base_body, dict):
            schema = deref(self.contract, op.body[1])
            for name in schema.get("required") or []:
                body = {k: v for k, v in base_body.items() if k != name}
                if not self.body_ok(op, body):
                    add(f"{name} missing", required, body)
            for name, sub in (schema.get("properties") or {}).items():
                if name not in base_body:
                    continue
                for label, value in invalid(self.contract, sub):
                    body = {**base_body, name: value}
                    if not self.body_ok(op, body):
                        add(f"{name} {label}", required, body)
        if op.body is not None:
            media = op.body[0]
            add("malformed JSON", required, raw=b'{"unclosed": ', content_type=media)
            if op.body_required:
                add(
                    "wrong content type (text/plain)",
                    required,
                    raw=b"plain text, not JSON",
                    content_type="text/plain",
                )
                if not self.body_ok(op, {}) and not self.body_ok(op, None):
                    add("empty body", required, raw=b"", content_type=media)
        return cases

    def credential_cases(self, op: Operation) -> list[Case]:
        if not op.secured or not self.schemes:
            return []
        values = self.param_values(op, full=False)
        url, options = self.request(op, values, self.body(op, full=True))
        cases = [Case(op.name, "credentials", "no credential", url, options, "rejected")]
        scheme = next(iter(self.schemes.values()))
        bad = _wrong_credential(scheme)
        if bad is not None:
            where, name, value = bad
            merged = dict(options)
            key = "params" if where == "query" else "cookies" if where == "cookie" else "headers"
            merged[key] = {**merged.get(key, {}), name: value}
            cases.append(Case(op.name, "credentials", "wrong credential", url, merged, "rejected"))
        return cases


def _unknown(builder: Builder, op: Operation, name: str) -> Any:
    """A value of path parameter ``name`` that no created resource is likely to have."""
    param = next(p for p in op.parameters if p.name == name and p.where == "path")
    schema = deref(builder.contract, param.schema)
    kind = (types(schema) or ["string"])[0]
    if kind == "integer":
        high = schema.get("maximum")
        return int(high) if isinstance(high, (int, float)) and high < 999_999 else 999_999
    if schema.get("format") == "uuid":
        return "00000000-0000-4000-8000-000000000000"
    candidate = "unknown-id-0"
    return (
        candidate
        if _scalar_ok(builder.contract, param, candidate)
        else valid(builder.contract, schema, name)
    )


def _coerced(kind: str, value: Any) -> Any:
    """What a server makes of a query string for a parameter of type ``kind``."""
    if not isinstance(value, str):
        return value
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        return value
    return value


def _wrong_credential(scheme: dict[str, Any]) -> tuple[str, str, str] | None:
    kind = scheme.get("type")
    if kind == "apiKey":
        return str(scheme.get("in", "header")), str(scheme.get("name")), "wrong-credential"
    if kind == "http" and str(scheme.get("scheme", "")).lower() == "basic":
        return "header", "Authorization", "Basic d3Jvbmc6Y3JlZGVudGlhbA=="
    if kind in ("http", "oauth2", "openIdConnect"):
        return "header", "Authorization", "Bearer wrong-credential"
    return None


def flows(builder: Builder, ops: list[Operation]) -> list[Flow]:
    """Sequences through the description's links, and create/read/update/delete inferred."""
    by_id = {op.op_id: op for op in ops}
    found = []
    for op in ops:
        for name, link in op.links.items():
            flow = _link_flow(builder, op, name, link, by_id)
            if flow is not None:
                found.append(flow)
    for create, item_methods, name, _path in _pairs(ops):
        flow = _crud_flow(builder, create, item_methods, name, builder.creates)
        if flow is not None:
            found.append(flow)
    return found


def _pairs(ops: list[Operation]) -> list[tuple[Operation, dict[str, Operation], str, str]]:
    """(create, the item path's operations by method, its parameter, item path) for each
    collection path with a POST whose item path (``/items/{item_id}``) has a GET."""
    by_path: dict[str, dict[str, Operation]] = {}
    for op in ops:
        by_path.setdefault(op.path, {})[op.method] = op
    pairs = []
    for path, methods in by_path.items():
        if "post" not in methods or "{" in path:
            continue
        for item_path, item_methods in by_path.items():
            match = re.fullmatch(re.escape(path.rstrip("/")) + r"/\{([^}/]+)\}", item_path)
            if match and "get" in item_methods:
                pairs.append((methods["post"], item_methods, match.group(1), item_path))
    return pairs


def _ident(text: str) -> str:
    return re.sub(r"\W+", "_", text).strip("_").lower() or "x"


def _success_schema(builder: Builder, op: Operation) -> dict[str, Any]:
    for code, response in op.responses.items():
        if code.startswith("2"):
            for media, content in (builder.contract.resolve(response).get("content") or {}).items():
                if media.endswith("json") and "schema" in content:
                    return deref(builder.contract, content["schema"])
    return {}


def _id_field(builder: Builder, create: Operation, param: str) -> str | None:
    props = _success_schema(builder, create).get("properties") or {}
    for candidate in (param, "id", re.sub(r"(?i)^.*?_?(id)$", r"\1", param)):
        if candidate in props:
            return candidate
    lowered = {key.lower(): key for key in props}
    return lowered.get(param.lower().replace("_", "")) or lowered.get("id")


def _collection(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1].lower()


def _dependencies(
    builder: Builder, create: Operation, body: Any, creates: dict[str, tuple[Operation, str]]
) -> tuple[list[Step], Any]:
    """Steps that create what ``body`` refers to (``item_id`` -> a POST to ``/items``)."""
    if not isinstance(body, dict):
        return [], body
    steps: list[Step] = []
    body = dict(body)
    for key in list(body):
        base = re.sub(r"(?i)_?id$", "", key).lower()
        if not base or base == key.lower():
            continue
        for noun in (base, base + "s", base + "es"):
            if noun in creates and creates[noun][0] is not create:
                dep, id_field = creates[noun]
                var = _ident(f"{base}_id")
                dep_body = builder.body(dep, full=True)
                url, options = builder.request(dep, builder.param_values(dep, False), dep_body)
                steps.append(
                    Step(
                        _ident(base),
                        dep.name,
                        url,
                        options,
                        "2xx",
                        save={var: ("body", (id_field,))},
                    )
                )
                candidate = {**body, key: "{" + var + "}"}
                body = candidate
                break
    return steps, body


def _crud_flow(
    builder: Builder,
    create: Operation,
    item: dict[str, Operation],
    param: str,
    creates: dict[str, tuple[Operation, str]],
) -> Flow | None:
    id_field = _id_field(builder, create, param)
    if id_field is None:
        return None
    body = builder.body(create, full=True)
    before, body = _dependencies(builder, create, body, creates)
    values = builder.param_values(create, full=False)
    url, options = builder.request(create, values, body)
    sent = body if body is not ... else None
    noun = _ident(create.path.strip("/").split("/")[-1]) or "resource"
    var = _ident(param)
    steps = [
        *before,
        Step("created", create.name, url, options, "2xx", save={var: ("body", (id_field,))}),
    ]
    read = item["get"]
    item_url = _fill(read.path, {param: "{" + var + "}"})
    read_values = {p: v for p, v in builder.param_values(read, False).items() if p.where != "path"}
    _, read_options = builder.request(read, read_values)
    steps.append(Step("read", read.name, item_url, read_options, "2xx", same_as=sent))
    does = ["create", "read back"]
    for method in ("put", "patch"):
        if method in item:
            update = item[method]
            new = _changed(builder, update, builder.body(update, full=True))
            if isinstance(new, dict) and isinstance(body, dict):
                new = {
                    k: body[k] if isinstance(body.get(k), str) and "{" in body[k] else v
                    for k, v in new.items()
                }
            values = {
                p: v for p, v in builder.param_values(update, False).items() if p.where != "path"
            }
            _, up_options = builder.request(update, values, new)
            steps.append(Step("updated", update.name, item_url, up_options, "2xx"))
            steps.append(
                Step(
                    "reread",
                    read.name,
                    item_url,
                    read_options,
                    "2xx",
                    same_as=new if new is not ... else None,
                )
            )
            does += ["update", "read back"]
            break
    if "delete" in item:
        delete = item["delete"]
        values = {p: v for p, v in builder.param_values(delete, False).items() if p.where != "path"}
        _, del_options = builder.request(delete, values)
        steps.append(Step("deleted", delete.name, item_url, del_options, "2xx"))
        steps.append(Step("gone", read.name, item_url, read_options, "gone"))
        does += ["delete", "then 404"]
    return Flow(
        name=f"test_{noun}_lifecycle",
        doc=f"{', '.join(does).capitalize()}: {create.name} then {read.path}.",
        group=create.group,
        steps=tuple(steps),
    )


def _changed(builder: Builder, op: Operation, body: Any) -> Any:
    """A valid body unlike ``body`` in as many fields as stay valid when changed."""
    if not isinstance(body, dict):
        return body
    new = dict(body)
    for key, value in body.items():
        if isinstance(value, bool):
            candidate: Any = not value
        elif isinstance(value, (int, float)):
            candidate = value + 1
        elif isinstance(value, str):
            candidate = value[:-1] + ("b" if value[-1:] != "b" else "c") if value else "b"
        else:
            continue
        if builder.body_ok(op, {**new, key: candidate}):
            new[key] = candidate
    return new


def _link_flow(
    builder: Builder,
    source: Operation,
    name: str,
    link: dict[str, Any],
    by_id: dict[str, Operation],
) -> Flow | None:
    target = by_id.get(str(link.get("operationId", "")))
    if target is None:
        ref = str(link.get("operationRef", ""))
        target = next(
            (o for o in by_id.values() if ref.endswith(_ref_tail(o.path, o.method))), None
        )
    if target is None:
        return None
    body = builder.body(source, full=True)
    values = builder.param_values(source, full=True)
    url, options = builder.request(source, values, body)
    # A source on a resource (GET /users/{id}) runs on one made for the test.
    (placed,) = builder.attach(source, [Case(source.name, "link", "", url, options, "2xx")])
    url, options = placed.url, placed.options
    save: dict[str, tuple[str, tuple[str, ...]]] = {}
    fixed: dict[Parameter, Any] = {}
    path_names: dict[str, str] = {}
    target_params = {p.name: p for p in target.parameters}
    for raw_name, expression in (link.get("parameters") or {}).items():
        pname = str(raw_name).split(".", 1)[-1]
        param = target_params.get(pname)
        if param is None:
            continue
        var = _ident(pname)
        if isinstance(expression, str) and expression.startswith("$response.body#"):
            keys = tuple(k for k in expression.split("#", 1)[1].split("/") if k)
            save[var] = ("body", keys)
        elif isinstance(expression, str) and expression.startswith("$response.header."):
            save[var] = ("header", (expression.rsplit(".", 1)[1],))
        elif isinstance(expression, str) and expression.startswith("$request."):
            where, _, key = expression[len("$request.") :].partition(".")
            found = {p.name: v for p, v in values.items() if p.where == where}.get(key)
            if found is None:
                return None
            fixed[param] = found
            continue
        elif isinstance(expression, str) and expression.startswith("$"):
            return None
        else:
            fixed[param] = expression
            continue
        if param.where == "path":
            path_names[pname] = "{" + var + "}"
        else:
            fixed[param] = "{" + var + "}"
    if not save:
        return None
    rest = {
        p: v
        for p, v in builder.param_values(target, False).items()
        if p.where != "path" and p not in fixed
    }
    target_url, target_options = builder.request(
        target, {**rest, **fixed}, builder.body(target, full=True)
    )
    target_url = _fill(
        target.path, {**path_names, **{p.name: v for p, v in fixed.items() if p.where == "path"}}
    )
    code, _, link_name = name.partition(" ")
    return Flow(
        name=f"test_link_{_ident(source.op_id)}_{_ident(link_name)}",
        doc=f"The {link_name!r} link of {source.name} ({code}) leads to {target.name}.",
        group=source.group,
        steps=(
            *placed.setup,
            Step("source", source.name, url, options, "2xx", save=save),
            Step("target", target.name, target_url, target_options, "2xx"),
        ),
    )


def _ref_tail(path: str, method: str) -> str:
    return "/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method
