"""Read an OpenAPI 3.0/3.1 description: refuse what is not one, list its operations.

openapi-spec-validator checks the document (its error's path becomes the JSON pointer in
the one-line message); ``$ref``s are followed with ``referencing`` through :class:`Contract`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .._exceptions import UsageError
from ._contract import METHODS, Contract, load_spec, pointer


@dataclass(frozen=True, eq=False)
class Parameter:
    """Compared by identity: the same parameter object keys its value in a case."""

    name: str
    where: str  # path, query, header, cookie
    required: bool
    schema: dict[str, Any]
    #: JSON pointer of the schema, for validation with its ``$ref``s.
    pointer: str
    #: The parameter's own ``example`` (or first of ``examples``), if any.
    example: Any = None


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    op_id: str
    group: str
    summary: str
    parameters: tuple[Parameter, ...]
    #: (media type, schema, pointer of the schema) of the JSON request body, if any.
    body: tuple[str, dict[str, Any], str] | None
    body_required: bool
    body_example: Any
    secured: bool
    responses: dict[str, Any]
    links: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.method.upper()} {self.path}"


def _json_pointer(parts: Any) -> str:
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def read(path: Path) -> dict[str, Any]:
    """The raw document, or a one-line UsageError naming what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read the spec {path}: {exc.strerror or exc}") from None
    try:
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"{path} is neither JSON nor YAML: {first}") from None
    if not isinstance(raw, dict):
        raise UsageError(f"{path} is not an OpenAPI description (its top level is not a mapping)")
    if "swagger" in raw:
        raise UsageError(
            f"{path} is Swagger {raw['swagger']} (OpenAPI 2.0): only OpenAPI 3.0 and 3.1 are "
            "read; convert it first (e.g. swagger2openapi)"
        )
    version = str(raw.get("openapi", ""))
    if not re.match(r"^3\.[01]\.\d+", version):
        raise UsageError(f"{path} is not OpenAPI 3.0 or 3.1 (openapi: {version or 'missing'!r})")
    _check_refs(path, raw)
    _validate(path, raw)
    return raw


def _check_refs(path: Path, raw: dict[str, Any]) -> None:
    """Every ``$ref`` must point inside this document; the validator's own error for a
    dangling one prints the whole document, so name the place it stands instead."""
    stack: list[tuple[tuple[str, ...], Any]] = [((), raw)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, list):
            stack.extend(((*where, str(i)), item) for i, item in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        ref = node.get("$ref")
        if isinstance(ref, str):
            problem = _dangling(raw, ref)
            if problem:
                at = _json_pointer((*where, "$ref"))
                raise UsageError(
                    f"{path} is not a valid OpenAPI description: at {at}: {ref!r} {problem}"
                )
        stack.extend(
            ((*where, str(k)), v) for k, v in node.items() if not _is_data(where, str(k))
        )


#: Keys whose values are data, not description: a "$ref" key in them is a value.
_DATA_KEYS = frozenset({"$ref", "example", "default", "enum", "const"})


def _is_data(where: tuple[str, ...], key: str) -> bool:
    if where and where[-1] in ("properties", "patternProperties"):
        return False  # the keys here are property names ("default", "enum" are fine)
    if key == "value" and len(where) >= 2 and where[-2] == "examples":
        return True  # an Example object's value
    return key in _DATA_KEYS


def _dangling(raw: dict[str, Any], ref: str) -> str | None:
    """Why ``ref`` does not resolve in ``raw``, or None when it does."""
    if not ref.startswith("#"):
        return "is not in this document: only local $refs (#/...) are read"
    node: Any = raw
    for part in ref[1:].lstrip("/").split("/") if ref != "#" else []:
        key = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return "does not resolve in this document"
    return None


def _validate(path: Path, raw: dict[str, Any]) -> None:
    from openapi_spec_validator import OpenAPIV30SpecValidator, OpenAPIV31SpecValidator

    kind = (
        OpenAPIV31SpecValidator
        if str(raw["openapi"]).startswith("3.1")
        else (OpenAPIV30SpecValidator)
    )
    try:
        errors = list(kind(raw).iter_errors())
    except Exception as exc:  # a $ref it cannot follow, mostly
        raise UsageError(f"{path} is not a valid OpenAPI description: {exc}"[:300]) from None
    if errors:
        error = min(errors, key=lambda e: len(list(e.absolute_path)))
        where = _json_pointer(error.absolute_path) if list(error.absolute_path) else "/"
        message = str(error.message).splitlines()[0][:200]
        raise UsageError(f"{path} is not a valid OpenAPI description: at {where}: {message}")


def operations(contract: Contract) -> list[Operation]:
    spec = contract.spec
    found = []
    global_security = bool(spec.get("security"))
    for path, item_ref in (spec.get("paths") or {}).items():
        item = contract.resolve(item_ref)
        shared = item.get("parameters") or []
        for method in METHODS:
            if method not in item:
                continue
            op = item[method]
            base = pointer("paths", path, method)
            params: dict[tuple[str, str], Parameter] = {}
            for index, ref in enumerate(shared):
                params.update(
                    _parameter(contract, ref, pointer("paths", path, "parameters") + f"/{index}")
                )
            for index, ref in enumerate(op.get("parameters") or []):
                params.update(_parameter(contract, ref, f"{base}/parameters/{index}"))
            body, required, example = _body(contract, op, base)
            security = op.get("security", spec.get("security"))
            secured = bool(security) and not any(s == {} for s in security or [])
            links = {}
            for code, response in (op.get("responses") or {}).items():
                for link_name, link in (contract.resolve(response).get("links") or {}).items():
                    links[f"{code} {link_name}"] = contract.resolve(link)
            found.append(
                Operation(
                    method=method,
                    path=path,
                    op_id=op.get("operationId") or _name(method, path),
                    group=(op.get("tags") or [_first_segment(path)])[0],
                    summary=str(op.get("summary") or "").strip(),
                    parameters=tuple(params.values()),
                    body=body,
                    body_required=required,
                    body_example=example,
                    secured=secured if "security" in op else global_security and secured,
                    responses=dict(op.get("responses") or {}),
                    links=links,
                )
            )
    return found


def _parameter(contract: Contract, ref: Any, where: str) -> dict[tuple[str, str], Parameter]:
    if isinstance(ref, dict) and isinstance(ref.get("$ref"), str):
        where = "#" + ref["$ref"].lstrip("#")
    param = contract.resolve(ref)
    schema = param.get("schema")
    if schema is None:  # content-encoded parameters: rare; sent as a plain string
        schema, schema_at = {"type": "string"}, None
    else:
        schema_at = where + "/schema"
    example = param.get("example")
    if example is None and isinstance(param.get("examples"), dict) and param["examples"]:
        first = contract.resolve(next(iter(param["examples"].values())))
        example = first.get("value") if isinstance(first, dict) else None
    return {
        (param["name"], param["in"]): Parameter(
            name=param["name"],
            where=param["in"],
            required=bool(param.get("required")) or param["in"] == "path",
            schema=schema,
            pointer=schema_at or "",
            example=example,
        )
    }


def _body(
    contract: Contract, op: dict[str, Any], base: str
) -> tuple[tuple[str, dict[str, Any], str] | None, bool, Any]:
    ref = op.get("requestBody")
    if ref is None:
        return None, False, None
    where = base + "/requestBody"
    if isinstance(ref, dict) and isinstance(ref.get("$ref"), str):
        where = "#" + ref["$ref"].lstrip("#")
    body = contract.resolve(ref)
    for media, content in (body.get("content") or {}).items():
        if media.split(";")[0].strip().endswith("json"):
            schema_at = where + "/content/" + media.replace("~", "~0").replace("/", "~1")
            example = content.get("example")
            if example is None and content.get("examples"):
                first = contract.resolve(next(iter(content["examples"].values())))
                example = first.get("value") if isinstance(first, dict) else None
            schema = content.get("schema") or {}
            return (media, schema, schema_at + "/schema"), bool(body.get("required")), example
    return None, bool(body.get("required")), None


def _name(method: str, path: str) -> str:
    words = re.sub(r"[{}]", "", path).strip("/").replace("/", "_") or "root"
    return f"{method}_{words}"


def _first_segment(path: str) -> str:
    for part in path.strip("/").split("/"):
        if part and not part.startswith("{"):
            return part
    return "root"


def load(path: Path) -> Contract:
    read(path)
    return Contract(load_spec(path))
