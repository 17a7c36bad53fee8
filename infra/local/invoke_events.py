#!/usr/bin/env python3
"""Sends every sample event in events/<function>/ to its function and checks each answer and
what reached the inbound queue against the folder's expected.json: the webhook's and the
desk's HTTP answers, the schedules' reports, the worker's batch item failures and the
replies it sent to the local Graph API.

    invoke_events.py --port N [--show]           under `cargo lambda watch` (cargo lambda invoke)
    invoke_events.py --sam --host GATEWAY [--show]
                                                 each event in its own container, with
                                                 `sam local invoke` on the `sam build` output
    invoke_events.py --start-api --host GATEWAY  the webhook's and the desk's HTTP events
                                                 as requests to `sam local start-api`

With --sam the local stack (moto) must listen on GATEWAY, the docker bridge's gateway
(`stack.py up --host`), and the demo tenant must be loaded always-open; this script starts the
local fakes (Graph, Claude) on GATEWAY too and points the functions at them. The worker's
events run only with --sam (under `cargo lambda watch` the worker is exercised by the chat).
Messages in worker events get the current time and fresh wamids, so they are neither stale
nor duplicates of an earlier run.

--show prints every queued envelope (the local demo); without it, only the verdicts.
Ends with "N passed, N failed" and exits non-zero on any failure.
"""

import argparse
import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stack  # noqa: E402

EVENTS = stack.ROOT / "events"
FUNCTIONS = ("webhook", "desk", "sla-sweep", "off-hours")
SAM_FUNCTIONS = {
    "webhook": "WebhookFunction",
    "desk": "DeskFunction",
    "sla-sweep": "SlaSweepFunction",
    "off-hours": "OffHoursFunction",
    "worker": "WorkerFunction",
}
FAKES = Path(os.environ.get("CARGO_TARGET_DIR") or stack.ROOT / "target") / "debug" / "local_fakes"


def invoke_watch(port, function, path):
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


class Fakes:
    """The local fakes of Graph and Claude on the bridge's gateway, for the containers."""

    def __init__(self, host):
        try:
            self.process = subprocess.Popen(
                [str(FAKES), "--host", host], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                text=True, encoding="utf-8", bufsize=1,
            )
        except FileNotFoundError:
            raise SystemExit(f"{FAKES} is missing: cargo build -p blackbox --bin local_fakes") from None
        self.ready = json.loads(self.process.stdout.readline() or "{}")
        if "graph" not in self.ready:
            raise SystemExit(f"{FAKES} did not start")
        self.synced = 0

    def sent_since_last_call(self):
        """What reached the Graph API since the last call: each recipient's message count."""
        self.synced += 1
        self.process.stdin.write(f"{self.synced}\n")
        self.process.stdin.flush()
        counts = {}
        for line in self.process.stdout:
            event = json.loads(line)
            if event["event"] == "sync" and event["id"] == str(self.synced):
                return counts
            if event["event"] == "graph_message":
                to = event["body"].get("to")
                counts[to] = counts.get(to, 0) + 1
        raise SystemExit("the local fakes stopped")

    def stop(self):
        self.process.stdin.close()
        self.process.wait(timeout=10)


class Sam:
    """`sam local invoke` on the `sam build` output, against the local stack on the gateway."""

    def __init__(self, env, fakes):
        variables = {k: v for k, v in env.items() if not k.startswith("AWS_")}
        variables["GRAPH_API_BASE_URL"] = fakes.ready["graph"]
        variables["ANTHROPIC_BASE_URL"] = fakes.ready["claude"]
        self.env_file = stack.STATE / "sam-env.json"
        self.env_file.write_text(json.dumps({"Parameters": variables}, indent=1))
        self.endpoint = env["AWS_ENDPOINT_URL"]
        self.timings = []

    def invoke(self, function, path):
        started = time.monotonic()
        result = subprocess.run(
            [
                str(stack.ROOT / ".venv/bin/sam"), "local", "invoke", SAM_FUNCTIONS[function],
                "--event", str(path), "--skip-pull-image", "--env-vars", str(self.env_file),
                "--parameter-overrides", f"LocalEndpointUrl={self.endpoint}",
            ],
            cwd=stack.ROOT, capture_output=True, text=True, timeout=600,
            env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
        )
        self.timings.append(time.monotonic() - started)
        # SAM exits 0 even when the function failed: the answer is the last line on stdout,
        # and a failure is a JSON error object (or nothing at all).
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        try:
            response = json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError):
            return None, "no answer: " + (result.stderr.strip().splitlines() or ["(nothing on stderr)"])[-1]
        if isinstance(response, dict) and "errorType" in response:
            return None, f"{response['errorType']}: {response.get('errorMessage')}"
        return response, None


class StartApi:
    """`sam local start-api` on a free loopback port: the HTTP API's routes, each request
    answered by its function in a container."""

    def __init__(self, sam):
        self.port = stack.free_port()
        self.log = open(stack.STATE / "start-api.log", "w")
        self.process = subprocess.Popen(
            [
                str(stack.ROOT / ".venv/bin/sam"), "local", "start-api", "--port", str(self.port),
                "--skip-pull-image", "--env-vars", str(sam.env_file),
                "--parameter-overrides", f"LocalEndpointUrl={sam.endpoint}",
            ],
            cwd=stack.ROOT, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
        )
        deadline = time.monotonic() + 120
        while "Running on http" not in (stack.STATE / "start-api.log").read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("sam local start-api did not start; see .local/start-api.log")
            time.sleep(0.2)

    def invoke(self, _function, path):
        """Sends the API Gateway event at `path` as the HTTP request it describes."""
        event = json.loads(path.read_text())
        body = event.get("body")
        if body is not None and event.get("isBase64Encoded"):
            body = base64.b64decode(body)
        elif body is not None:
            body = body.encode()
        query = f"?{event['rawQueryString']}" if event.get("rawQueryString") else ""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{event['rawPath']}{query}", data=body,
            headers=event.get("headers", {}), method=event["requestContext"]["http"]["method"],
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:
                return {"statusCode": answer.status, "body": answer.read().decode()}, None
        except urllib.error.HTTPError as answer:
            return {"statusCode": answer.code, "body": answer.read().decode()}, None
        except OSError as error:
            return None, str(error)

    def stop(self):
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=30)


def freshen(event, run):
    """The worker's batch with the current time and wamids of this run."""
    now = int(time.time())
    for record in event["Records"]:
        envelope = json.loads(record["body"])
        message = envelope.get("event", {}).get("message")
        if envelope.get("v") == 1 and message:
            message["timestamp"] = now
            message["wamid"] = f"{message['wamid']}.{run}"
            message["raw"]["id"] = message["wamid"]
            message["raw"]["timestamp"] = str(now)
            record["attributes"]["MessageDeduplicationId"] = message["wamid"]
        record["body"] = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
    return event


def check(want, response, queued, sent):
    problems = []
    if "report" in want:
        missing = [key for key in want["report"] if key not in (response or {})]
        if missing:
            problems.append(f"report lacks {missing}: {response}")
    elif "failures" in want:
        failed = sorted(item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", []))
        if failed != sorted(want["failures"]):
            problems.append(f"batch item failures {failed}, want {want['failures']}")
        for customer, count in want["replies"].items():
            if sent.get(customer, 0) < count:
                problems.append(f"{sent.get(customer, 0)} sent to customer …{customer[-4:]}, want at least {count}")
    else:
        if response.get("statusCode") != want["status"]:
            problems.append(f"status {response.get('statusCode')}, want {want['status']}")
        if "body" in want and response.get("body") != want["body"]:
            problems.append(f"body {response.get('body')!r}, want {want['body']!r}")
    if len(queued) != want["queued"]:
        problems.append(f"{len(queued)} queued, want {want['queued']}")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    runner = parser.add_mutually_exclusive_group(required=True)
    runner.add_argument("--port", type=int, help="cargo lambda watch's invoke port")
    runner.add_argument("--sam", action="store_true", help="sam local invoke, one container per event")
    runner.add_argument("--start-api", action="store_true", help="requests to sam local start-api")
    parser.add_argument("--host", help="with --sam or --start-api: the docker bridge's gateway address")
    parser.add_argument("--show", action="store_true")
    args = parser.parse_args()
    containers = args.sam or args.start_api
    if containers and not args.host:
        parser.error("--sam and --start-api need --host (the docker bridge's gateway)")

    env = stack.read_env()
    sqs = stack.clients(env["AWS_ENDPOINT_URL"])["sqs"]
    fakes = Fakes(args.host) if containers else None
    api = None
    if args.sam:
        sam = Sam(env, fakes)
        functions = (*FUNCTIONS, "worker")
        invoke = sam.invoke
    elif args.start_api:
        api = StartApi(Sam(env, fakes))
        functions = ("webhook", "desk")
        invoke = api.invoke
    else:
        functions = FUNCTIONS
        invoke = lambda function, path: invoke_watch(args.port, function, path)  # noqa: E731
    run = str(int(time.time()))
    passed = failed = 0
    try:
        for function, name, want in (
            (function, name, want)
            for function in functions
            for name, want in json.loads((EVENTS / function / "expected.json").read_text()).items()
        ):
            path = EVENTS / function / name
            if function == "worker":
                path = stack.STATE / f"worker-{name}"
                path.write_text(json.dumps(freshen(json.loads((EVENTS / function / name).read_text()), run)))
            response, error = invoke(function, path)
            queued = stack.drain(sqs, env["INBOUND_QUEUE_URL"])
            sent = fakes.sent_since_last_call() if fakes else {}
            name = f"{function}/{name}"
            problems = [f"invoke failed: {error}"] if error else check(want, response, queued, sent)
            verdict = "ok" if not problems else "FAILED: " + "; ".join(problems)
            if response and "statusCode" in response:
                answer = response["statusCode"]
            elif response and "batchItemFailures" in response:
                answer = f"{len(response['batchItemFailures'])} failed, {sum(sent.values())} sent"
            else:
                answer = "report" if response else "-"
            print(f"{name:36} -> {answer}, {len(queued):2} queued  {verdict}", flush=True)
            if args.show:
                for line in stack.describe(queued):
                    print("      " + line)
            passed += not problems
            failed += bool(problems)
    finally:
        if api:
            api.stop()
        if fakes:
            fakes.stop()
    if args.sam and sam.timings:
        timings = sam.timings
        print(f"sam local invoke: first {timings[0]:.1f} s, later ones {min(timings[1:] or timings):.1f}"
              f"-{max(timings[1:] or timings):.1f} s each")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
