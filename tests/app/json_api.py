"""Helpers for the tests of the JSON endpoints: parse as a browser does, read the one error shape."""

import json

import httpx


def strict_json(text: str):
    """Parses JSON the way a browser does: NaN and Infinity are not JSON."""

    def refuse(constant: str):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def error_text(response: httpx.Response) -> str:
    """What a page shows of an error: `detail` itself, or each validation message joined."""
    detail = strict_json(response.text)["detail"]
    return detail if isinstance(detail, str) else " · ".join(e["msg"] for e in detail)
