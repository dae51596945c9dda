#!/usr/bin/env python3
"""Run scim2-tester (https://scim2-tester.readthedocs.io) against a scimlet tenant.

    python tests/conformance/run.py --url TENANT_URL --token TOKEN

(or set SCIMLET_TENANT_URL / SCIMLET_TOKEN). Prints one row per check, then
the verdict. Exit status:

  0  every check passed or is a known gap;
  1  a check failed that is not in known-gaps.json, or a listed gap no longer
     fails (remove it from the list: the list only shrinks);
  2  the run itself could not be done (bad arguments, server unreachable,
     malformed known-gaps.json).

A check passes with status SUCCESS, COMPLIANT (follows a SHOULD), ACCEPTABLE
(uses a MAY) or SKIPPED; DEVIATION, ERROR and CRITICAL are failures.

A check's identifier is `<resource type>/<check>` (`-/<check>` for server-wide
checks), plus `[<attribute path>]` for checks run once per attribute, e.g.
`Group/check_add_attribute[members]`. Every result carrying one identifier
must pass for the identifier to pass. known-gaps.json lists the identifiers
expected to fail, each with the reason:

    [{"check": "User/search_with_attributes", "reason": "..."}]
"""

import argparse
import json
import os
import sys
from pathlib import Path

PASSING = {"SUCCESS", "COMPLIANT", "ACCEPTABLE", "SKIPPED"}
DEFAULT_GAPS = Path(__file__).resolve().with_name("known-gaps.json")


def check_id(result) -> str:
    ident = f"{result.resource_type or '-'}/{result.title or '?'}"
    data = result.data
    if isinstance(data, dict) and isinstance(data.get("urn"), str):
        ident += f"[{data['urn']}]"
    return ident


def load_gaps(path: Path) -> dict[str, str]:
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"error: cannot read {path}: {exc}") from exc
    if not isinstance(entries, list):
        raise SystemExit(f"error: {path}: expected a JSON list")
    gaps: dict[str, str] = {}
    for i, entry in enumerate(entries):
        if (
            not isinstance(entry, dict)
            or set(entry) != {"check", "reason"}
            or not isinstance(entry["check"], str)
            or not isinstance(entry["reason"], str)
            or not entry["reason"].strip()
        ):
            raise SystemExit(f'error: {path}: entry {i} must be {{"check": str, "reason": non-empty str}}: {entry}')
        if entry["check"] in gaps:
            raise SystemExit(f"error: {path}: {entry['check']} is listed twice")
        gaps[entry["check"]] = entry["reason"]
    return gaps


def one_line(text, width: int) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("SCIMLET_TENANT_URL"), help="tenant URL (SCIM base)")
    parser.add_argument("--token", default=os.environ.get("SCIMLET_TOKEN"), help="bearer token of that account")
    parser.add_argument("--known-gaps", type=Path, default=DEFAULT_GAPS, help="known-gaps.json to compare with")
    parser.add_argument("--verbose", action="store_true", help="print the full reason of every failing check")
    args = parser.parse_args()
    if not args.url or not args.token:
        parser.print_usage(sys.stderr)
        print("error: --url and --token (or SCIMLET_TENANT_URL and SCIMLET_TOKEN) are required", file=sys.stderr)
        return 2

    try:
        gaps = load_gaps(args.known_gaps)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2

    from httpx2 import Client
    from scim2_client.engines.httpx2 import SyncSCIMClient
    from scim2_tester import check_server

    http = Client(
        base_url=args.url.rstrip("/"),
        headers={"Authorization": f"Bearer {args.token}"},
        timeout=60,
    )
    try:
        http.get("/ServiceProviderConfig").raise_for_status()
    except Exception as exc:  # noqa: BLE001 - any failure here means no run
        print(f"error: {args.url}/ServiceProviderConfig is not reachable: {exc}", file=sys.stderr)
        return 2

    results = check_server(SyncSCIMClient(http))
    if not results:
        print("error: scim2-tester ran no check", file=sys.stderr)
        return 2

    # Per identifier: did every result pass?
    failing: dict[str, list] = {}
    seen: set[str] = set()
    rows = []
    for r in results:
        ident = check_id(r)
        seen.add(ident)
        status = r.status.name
        if status not in PASSING:
            failing.setdefault(ident, []).append(r)
        rows.append((status, ident, one_line(r.reason, 110)))

    width = min(72, max(len(ident) for _, ident, _ in rows))
    print(f"{'STATUS':<10}  {'CHECK':<{width}}  REASON")
    for status, ident, reason in rows:
        mark = "" if status in PASSING else ("  (known gap)" if ident in gaps else "  <-- NEW FAILURE")
        print(f"{status:<10}  {ident:<{width}}  {reason}{mark}")

    counts: dict[str, int] = {}
    for status, _, _ in rows:
        counts[status] = counts.get(status, 0) + 1
    print()
    print("scim2-tester:", ", ".join(f"{n} {s}" for s, n in sorted(counts.items())), f"({len(rows)} results)")

    new = sorted(set(failing) - set(gaps))
    fixed = sorted(set(gaps) - set(failing))
    known = sorted(set(gaps) & set(failing))
    if known:
        print(f"\n{len(known)} known gap(s), still failing (tests/conformance/known-gaps.json):")
        for ident in known:
            print(f"  {ident}: {gaps[ident]}")
    if new:
        print(f"\n{len(new)} NEW FAILURE(S), not in known-gaps.json:")
        for ident in new:
            for r in failing[ident]:
                print(f"  {ident} [{r.status.name}]: {r.reason if args.verbose else one_line(r.reason, 400)}")
    if fixed:
        print(f"\n{len(fixed)} listed gap(s) NO LONGER FAIL; remove them from known-gaps.json:")
        for ident in fixed:
            print(f"  {ident}" + ("" if ident in seen else " (check not run at all)"))
    if new or fixed:
        print("\nconformance: FAILED")
        return 1
    print("\nconformance: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
