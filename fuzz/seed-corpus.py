#!/usr/bin/env python3
"""Seeds fuzz/corpus/<target>/ from the request vectors in tests/vectors/.

Every request a vector sends becomes an input of `request`; its filters,
PATCH paths, PATCH bodies and resource bodies become inputs of `filter`,
`patch_path`, `patch_apply` and `resource`. Files are named by the SHA-1 of
their content, as libFuzzer names what it adds, so re-running adds only what
is new. Run it after adding vectors; commit what it writes.
"""
import hashlib
import json
import pathlib
import re
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
PLACEHOLDER = re.compile(r"\{\{[^}]*\}\}")


def put(target: str, data: bytes) -> None:
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / hashlib.sha1(data).hexdigest()).write_bytes(data)


def ids(text: str) -> str:
    """Vector placeholders become the fuzz account's seeded ids."""
    text = text.replace("{{origin}}", "").replace("{{base}}", "")
    text = re.sub(r"(/Groups/)\{\{[^}]*\}\}", r"\1{group}", text)
    return PLACEHOLDER.sub("{user}", text)


def main() -> None:
    for path in sorted((ROOT / "tests" / "vectors").rglob("*.json")):
        for step in json.loads(path.read_text()).get("steps", []):
            request = step.get("request")
            if not request:
                continue
            method, target = request["method"], ids(request["path"])
            body = request.get("body")
            text = body if isinstance(body, str) else ("" if body is None else json.dumps(body))
            text = ids(text)
            headers = "".join(f"{k}: {v}\n" for k, v in (request.get("headers") or {}).items() if v is not None)
            put("request", f"{method}\n{target}\n{headers}\n{text}".encode())
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)
            for value in query.get("filter", []):
                put("filter", value.encode())
            if isinstance(body, dict):
                if isinstance(body.get("filter"), str):
                    put("filter", body["filter"].encode())
                if "Operations" in body and method == "PATCH":
                    put("patch_apply", text.encode())
                    for op in body["Operations"]:
                        if isinstance(op, dict) and isinstance(op.get("path"), str):
                            put("patch_path", op["path"].encode())
                if method in ("POST", "PUT") and re.search(r"/(Users|Groups)(/|$)", target):
                    put("resource", text.encode())


if __name__ == "__main__":
    main()
