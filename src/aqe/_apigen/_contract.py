"""The contract checks every generated test makes, on every response.

This module is copied, as it is below its marker, into the generated ``conftest.py`` so the
suite stands alone (httpx, jsonschema, PyYAML); the generator uses the same code to probe,
so a case's verdict at generation is the verdict the written test gives.
"""

# --- contract checks (copied into the generated conftest.py) ---
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import referencing
import yaml
from referencing.jsonschema import DRAFT202012

SPEC_URI = "urn:aqe:openapi"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
#: Codes that say the request itself was malformed: never the answer to a valid request.
MALFORMED = (400, 422)


def load_spec(path: Path) -> dict[str, Any]:
    """The description as JSON Schema 2020-12 understands it (3.0's ``nullable`` folded in)."""
    text = path.read_text(encoding="utf-8")
    spec = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if str(spec.get("openapi", "")).startswith("3.0"):
        spec = _from_30(spec)
    return dict(spec)


def _from_30(node: Any) -> Any:
    """3.0 schemas say ``nullable: true`` and boolean exclusive bounds; 2020-12 does not."""
    if isinstance(node, list):
        return [_from_30(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _from_30(value) for key, value in node.items()}
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), bool):
            if out.pop(bound) and limit in out:
                out[bound] = out.pop(limit)
    if out.get("nullable") is True:
        out.pop("nullable")
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        elif "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        elif "type" not in out:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def pointer(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


class Contract:
    """The operations of one description, and the checks of a response against them."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        resource = DRAFT202012.create_resource(spec)
        self.registry: referencing.Registry[Any] = referencing.Registry().with_resource(
            SPEC_URI, resource
        )

    def resolve(self, node: Any) -> Any:
        """A ``$ref``'d object (a response, a parameter) followed to what it names."""
        seen = 0
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 20:
            resolved = self.registry.resolver(SPEC_URI).lookup(SPEC_URI + node["$ref"])
            node, seen = resolved.contents, seen + 1
        return node

    def operation(self, name: str) -> tuple[str, dict[str, Any]]:
        """``"POST /items"`` -> (its JSON pointer, the operation object)."""
        method, _, path = name.partition(" ")
        where = pointer("paths", path, method.lower())
        return where, self.resolve(self.spec["paths"][path])[method.lower()]

    def errors(self, instance: Any, where: str) -> list[str]:
        """Why ``instance`` is not valid against the schema at pointer ``where``."""
        validator = jsonschema.Draft202012Validator(
            {"$ref": SPEC_URI + where}, registry=self.registry
        )
        found = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        return [
            f"{'/'.join(str(p) for p in e.absolute_path) or 'body'}: {e.message[:200]}"
            for e in found[:3]
        ]

    def documented(self, responses: dict[str, Any], status: int) -> str | None:
        """The key of ``responses`` documenting ``status`` (``"404"``, ``"4XX"``, ``"default"``)."""
        for key in (str(status), f"{status // 100}XX", f"{status // 100}xx", "default"):
            if key in responses:
                return key
        return None

    def problems(self, response: httpx.Response, operation: str, expect: str) -> list[str]:
        """What is wrong with ``response`` to ``operation``: empty when it keeps the contract.

        ``expect`` is "success" (a valid request: 2xx, or a documented answer that depends on
        the server's state, never 400/422), "2xx" (a step of a sequence), "rejected" (an
        invalid request: 4xx) or "any".
        """
        where, op = self.operation(operation)
        responses = op.get("responses", {})
        status = response.status_code
        found = []
        if status >= 500:
            found.append(f"server error {status}")
        if expect == "rejected" and not 400 <= status < 500:
            found.append(f"an invalid request was answered {status}, not a 4xx")
        if expect == "2xx" and not 200 <= status < 300:
            found.append(f"answered {status}, not a 2xx")
        if expect == "success" and not 200 <= status < 300:
            if status in MALFORMED or status >= 500 or not 400 <= status < 500:
                found.append(f"a valid request was answered {status}, not a 2xx")
            elif self.documented(responses, status) is None:
                found.append(f"a valid request was answered {status}, not a 2xx")
        key = self.documented(responses, status)
        if key is None:
            found.append(f"status {status} is not documented (documented: {', '.join(responses)})")
            return found
        documented = self.resolve(responses[key])
        for header, spec in (documented.get("headers") or {}).items():
            if self.resolve(spec).get("required") and header not in response.headers:
                found.append(f"required header {header} missing")
        content = documented.get("content") or {}
        if not content or not response.content:
            return found
        media = response.headers.get("content-type", "").split(";")[0].strip().lower()
        match = _media(content, media)
        if match is None:
            found.append(
                f"content type {media or 'none'!r} is not documented ({', '.join(content)})"
            )
            return found
        if "schema" in content[match] and (media.endswith("json") or match.endswith("json")):
            try:
                body = response.json()
            except ValueError:
                found.append(f"the body is not JSON: {response.text[:80]!r}")
                return found
            schema = (
                where
                + "/"
                + "/".join(
                    [
                        "responses",
                        key,
                        "content",
                        match.replace("~", "~0").replace("/", "~1"),
                        "schema",
                    ]
                )
            )
            found += [f"body does not match its schema: {e}" for e in self.errors(body, schema)]
        return found


def _media(content: dict[str, Any], media: str) -> str | None:
    for documented in content:
        plain = documented.split(";")[0].strip().lower()
        if plain in (media, "*/*") or (plain.endswith("/*") and media.startswith(plain[:-1])):
            return documented
    return None


def describe(response: httpx.Response) -> str:
    """The request and its answer, in short, to reproduce a failure by hand."""
    request = response.request
    body = request.content.decode(errors="replace")[:300] if request.content else ""
    return (
        f"{request.method} {request.url} {body}\n-> {response.status_code} "
        f"{response.headers.get('content-type', '')} {response.text[:300]}"
    )


def differing_fields(sent: Any, received: Any) -> list[str]:
    """The fields of ``sent`` that ``received`` holds with another value (read back unequal)."""
    if not isinstance(sent, dict) or not isinstance(received, dict):
        return [] if sent == received else ["body"]
    return [
        f"{key}: sent {value!r}, read back {received[key]!r}"
        for key, value in sent.items()
        if key in received and not _same(value, received[key])
    ]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(a - b) <= 1e-9 * max(1.0, abs(a))
    if isinstance(a, dict) and isinstance(b, dict):
        return not differing_fields(a, b)
    return bool(a == b)


def gone_problems(contract: Contract, response: httpx.Response, operation: str) -> list[str]:
    """A read after a delete: 404 or 410, and otherwise as documented."""
    if response.status_code not in (404, 410):
        return [f"still there after the delete: {operation} answered {response.status_code}"]
    _, op = contract.operation(operation)
    if contract.documented(op.get("responses", {}), response.status_code) is None:
        return []
    return contract.problems(response, operation, "any")


def load_app(target: str, directory: Path) -> Any:
    """``module:attribute`` (or ``module:factory()``) imported with ``directory`` on sys.path."""
    import importlib
    import sys

    module_name, _, attribute = target.partition(":")
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))
    app: Any = importlib.import_module(module_name)
    for part in (attribute or "app").removesuffix("()").split("."):
        app = getattr(app, part)
    return app() if attribute.endswith("()") else app


class RetryingTransport(httpx.HTTPTransport):
    """Network faults (a refused connect, a keep-alive connection the server had closed)
    are retried with exponential backoff and jitter; HTTP answers, 5xx included, never."""

    RETRYABLE = (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError)

    def __init__(self, attempts: int = 4, base: float = 0.1) -> None:
        super().__init__()
        self.attempts, self.base = attempts, base

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        import random
        import time

        for attempt in range(self.attempts):
            try:
                return super().handle_request(request)
            except self.RETRYABLE:
                if attempt == self.attempts - 1:
                    raise
                time.sleep(self.base * 2**attempt * (1 + random.random()))
        raise AssertionError("unreachable")  # pragma: no cover


def make_client(
    base_url: str,
    app: Any,
    headers: dict[str, str],
    params: dict[str, str],
    cookies: dict[str, str],
) -> httpx.Client:
    """A client of the server at ``base_url``, or of ``app`` in-process (ASGI or WSGI).

    Server errors stay responses (a 500 is a finding, not an exception in the test).
    """
    import inspect

    if app is None:
        return httpx.Client(
            base_url=base_url,
            headers=headers,
            params=params,
            cookies=cookies,
            timeout=30,
            transport=RetryingTransport(),
        )
    call = getattr(app, "__call__", None)  # noqa: B004 - an ASGI app may be an object
    if inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(call):
        from starlette.testclient import TestClient

        client: Any = TestClient(
            app,
            base_url=base_url,
            raise_server_exceptions=False,
            headers=headers,
            cookies=cookies,
        )
        client.params = httpx.QueryParams(params)
        return client  # type: ignore[no-any-return]
    transport = httpx.WSGITransport(app=app, raise_app_exceptions=False)
    return httpx.Client(
        transport=transport, base_url=base_url, headers=headers, params=params, cookies=cookies
    )


def credentials(
    schemes: dict[str, tuple[str, str, str, str]], environ: Any
) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Headers, query parameters and cookies for each scheme whose variable is set."""
    import base64

    headers: dict[str, str] = {}
    params: dict[str, str] = {}
    cookies: dict[str, str] = {}
    for kind, where, name, variable in schemes.values():
        value = environ.get(variable)
        if not value:
            continue
        if kind == "apiKey":
            {"header": headers, "query": params, "cookie": cookies}[where][name] = value
        elif kind == "basic":
            token = base64.b64encode(value.encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        else:
            headers["Authorization"] = f"Bearer {value}"
    return headers, params, cookies


class Checks:
    """The ``check`` fixture: ``check(response, "POST /items")`` fails the test on a broken
    contract, with the request and the answer to reproduce it."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract

    def __call__(self, response: httpx.Response, operation: str, expect: str = "success") -> None:
        found = self.contract.problems(response, operation, expect)
        assert not found, "; ".join(found) + "\n" + describe(response)

    def gone(self, response: httpx.Response, operation: str) -> None:
        found = gone_problems(self.contract, response, operation)
        assert not found, "; ".join(found) + "\n" + describe(response)

    @staticmethod
    def fill(value: Any, **names: Any) -> Any:
        """``value`` with each ``"{name}"`` placeholder replaced by what the test made."""
        if isinstance(value, str):
            if value.startswith("{") and value.endswith("}") and value[1:-1] in names:
                return names[value[1:-1]]
            return value.format(**names) if "{" in value else value
        if isinstance(value, dict):
            return {k: Checks.fill(v, **names) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(Checks.fill(v, **names) for v in value)
        return value

    def read_back(self, sent: Any, response: httpx.Response) -> None:
        found = differing_fields(sent, response.json())
        assert not found, "read back unequal: " + "; ".join(found) + "\n" + describe(response)
