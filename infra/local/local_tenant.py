#!/usr/bin/env python3
"""Writes .local/demo.yaml: the demo tenant as the local stack runs it, its Chatwoot at the
chat's local fake. With --always-open its business hours and holidays are left out, so a
scripted conversation gets the same replies at any time of day (the tests' case).

    local_tenant.py --chatwoot-port N [--always-open]
"""

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chatwoot-port", type=int, required=True)
    parser.add_argument("--always-open", action="store_true")
    args = parser.parse_args()
    text = (ROOT / "infra/tenants/demo.yaml").read_text()
    text, replaced = re.subn(r"base_url: https://\S+", f"base_url: http://127.0.0.1:{args.chatwoot_port}", text)
    if replaced != 1:
        sys.exit("demo.yaml: expected one desk.chatwoot.base_url")
    if args.always_open:
        # Top-level blocks end where the next top-level key starts.
        text = re.sub(r"(?ms)^(business_hours|holidays):.*?(?=^\S)", "", text)
    (ROOT / ".local/demo.yaml").write_text(text)


if __name__ == "__main__":
    main()
