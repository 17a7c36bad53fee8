#!/usr/bin/env python3
"""Sends every sample event in events/<function>/ to that function running under
`cargo lambda watch`, with `cargo lambda invoke --data-file`, and checks each answer and what
reached the inbound queue against the folder's expected.json: the webhook's and the desk's
HTTP answers, the schedules' reports.

    invoke_events.py --port N [--show]

--show prints every queued envelope (the local demo); without it, only the verdicts.
Ends with "N passed, N failed" and exits non-zero on any failure.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stack  # noqa: E402

EVENTS = stack.ROOT / "events"
FUNCTIONS = ("webhook", "desk", "sla-sweep", "off-hours")


def invoke(port, function, path):
    result = subprocess.run(
        [
            str(stack.ROOT / ".venv/bin/cargo-lambda"), "lambda", "invoke", function,
            "--invoke-address", "127.0.0.1", "--invoke-port", str(port), "--data-file", str(path), "--output-format", "json",
        ],
        cwd=stack.ROOT, capture_output=True, text=True, timeout=300,
    )
    if result.returncode != 0:
        return None, result.stderr.strip() or result.stdout.strip()
    return json.loads(result.stdout), None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--show", action="store_true")
    args = parser.parse_args()

    env = stack.read_env()
    sqs = stack.clients(env["AWS_ENDPOINT_URL"])["sqs"]
    passed = failed = 0
    for function, name, want in (
        (function, name, want)
        for function in FUNCTIONS
        for name, want in json.loads((EVENTS / function / "expected.json").read_text()).items()
    ):
        response, error = invoke(args.port, function, EVENTS / function / name)
        queued = stack.drain(sqs, env["INBOUND_QUEUE_URL"])
        problems = []
        name = f"{function}/{name}"
        if error:
            problems.append(f"invoke failed: {error}")
        elif "report" in want:
            missing = [key for key in want["report"] if key not in (response or {})]
            if missing:
                problems.append(f"report lacks {missing}: {response}")
        else:
            if response.get("statusCode") != want["status"]:
                problems.append(f"status {response.get('statusCode')}, want {want['status']}")
            if "body" in want and response.get("body") != want["body"]:
                problems.append(f"body {response.get('body')!r}, want {want['body']!r}")
        if len(queued) != want["queued"]:
            problems.append(f"{len(queued)} queued, want {want['queued']}")
        verdict = "ok" if not problems else "FAILED: " + "; ".join(problems)
        status = response.get("statusCode", "report") if response else "-"
        print(f"{name:36} -> {status}, {len(queued):2} queued  {verdict}")
        if args.show:
            for line in stack.describe(queued):
                print("      " + line)
        passed += not problems
        failed += bool(problems)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
