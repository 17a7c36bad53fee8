#!/usr/bin/env python3
"""The contract test: schemathesis against the OpenAPI document the api binary serves.

    contract.py seed --out FILE                  tenants, keys and members for the run, made
                                                 with the ops CLI on the local stack
    contract.py run --base-url URL --seeds FILE [--max-examples N] [--seed N]

Runs schemathesis once per caller, each with its own valid credentials as an
`Authorization` header: every tenant route with the key of the first tenant, again with the
key of the second, and the provider's routes with the platform key. Each run pins the path
parameters that name stored things (the tenant, a customer with a conversation, keys and
members made for the run) to what was seeded, so generated and negative data reach the
handlers instead of stopping at a 404. The checks: no server error, statuses, content
types and bodies as the document says, and invalid data rejected.

Fails when a check fails, and when an operation of the document was never answered with a
2xx in any run: a run where everything is refused proves nothing. Prints the operation
count and the time taken.

FILE (written by contract.sh from what the ops CLI created) is JSON:
    {"platform_key": "...", "provider": {"tenant": "<pn>", ...path parameters},
     "tenants": [{"key": "...", "parameters": {"tenant": "<pn>", "customer": "...", ...}}, ...]}
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATE = ROOT / ".local" / "contract"
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
    ]
)
METHODS = ("get", "put", "post", "delete", "patch")
# Routes of one tenant: everything under /v1/tenants/{tenant}/ but disabling and enabling
# it. The tenant itself (/v1/tenants/{tenant}), those two and everything else belong to the
# provider.
TENANT_PREFIX = "/v1/tenants/{tenant}/"
PROVIDER_ONLY = {"/v1/tenants/{tenant}/disable", "/v1/tenants/{tenant}/enable"}


def operations(document):
    return sorted(
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    )


def parameter_names(document, label):
    method, path = label.split(" ", 1)
    item = document["paths"][path]
    declared = item.get("parameters", []) + item[method.lower()].get("parameters", [])
    return {p["name"] for p in declared if p.get("in") == "path"}


def toml_value(value):
    return json.dumps(value)  # a JSON string or number is a TOML one


def run(name, args, document, labels, key, parameters, statuses):
    """One schemathesis run over `labels` as one caller; returns (exit code, seconds)."""
    STATE.mkdir(parents=True, exist_ok=True)
    # Path parameters naming something seeded are pinned; the others are generated (an
    # operation whose stored things were not seeded then finds nothing, and never gets its 2xx).
    used = set().union(*(parameter_names(document, label) for label in labels)) & set(parameters)
    config = STATE / f"{name}.toml"
    config.write_text(
        "[parameters]\n"
        + "".join(f'"path.{p}" = {toml_value(parameters[p])}\n' for p in sorted(used))
    )
    command = [
        str(ROOT / ".venv/bin/schemathesis"), "--config-file", str(config), "--no-color",
        "run", f"{args.base_url}/v1/openapi.json", "--url", args.base_url,
        "--checks", CHECKS,
        "--max-examples", str(args.max_examples),
        "--seed", str(args.seed),
        "--workers", "1",
        # Nothing kept between runs: the same seed gives the same cases.
        "--generation-database", "none",
        "--header", f"Authorization: Bearer {key}",
        "--report", "junit", "--report-junit-path", str(STATE / f"{name}.junit.xml"),
    ]
    # The operations of this run, by their labels ("GET /v1/...").
    command += ["--include-name-regex", "^(" + "|".join(re.escape(label) for label in labels) + ")$"]
    env = dict(os.environ, SCHEMATHESIS_HOOKS="contract_hooks", CONTRACT_STATUSES=str(statuses),
               PYTHONPATH=str(Path(__file__).resolve().parent))
    print(f"--- {name}: {len(labels)} operations", flush=True)
    started = time.monotonic()
    log = STATE / f"{name}.log"
    with open(log, "w") as out:
        code = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    elapsed = time.monotonic() - started
    text = log.read_text()
    if code != 0:
        print(text)
    else:
        summary = [line for line in text.splitlines() if "generated" in line or "No issues found" in line]
        print("\n".join(f"    {line.strip()}" for line in summary))
    return code, elapsed


# The tenants of the run: the demo tenant (loaded by contract.sh, with a conversation of
# CUSTOMER), a second tenant, and one the provider's run may change and disable.
FIRST_TENANT = "106540352242922"
SECOND_TENANT = "106540352242923"
PROVIDERS_TENANT = "106540352242924"
CUSTOMER = "5511987654321"  # chat.py's customer
ALL_SCOPES = ["read", "send", "admin", "campaigns:write"]


def ops(*arguments):
    """The ops CLI on the local stack (its environment is the stack's, from contract.sh)."""
    binary = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target") / "debug" / "ops"
    result = subprocess.run([str(binary), *arguments], env=dict(os.environ, STACK_NAME="local"),
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"ops {' '.join(arguments)} failed:\n{result.stderr}")
    return result.stdout.strip()


def tenant_flag(tenant):
    return ["--tenant", tenant] if tenant else []


def create_key(tenant, name, scopes):
    """A new key (`sdk_<kind>_<id>_<secret>`) and its id."""
    arguments = ["keys", "create", *tenant_flag(tenant), "--name", name]
    for scope in scopes:
        arguments += ["--scope", scope]
    secret = ops(*arguments)
    return secret, secret.split("_")[2]


def add_member(tenant, email, role):
    """A person (invited into the local user pool) as a tenant's member with `role`, or a
    platform admin; returns the person's sub."""
    role_flag = ["--role", role] if tenant else []
    return ops("members", "add", *tenant_flag(tenant), *role_flag, email).split("\t")[0]


def tenant_copy(phone_number_id, name):
    """The demo tenant as the local stack runs it, under another number and name."""
    import yaml

    tenant = yaml.safe_load((ROOT / ".local/demo.yaml").read_text())
    tenant.update({"phone_number_id": phone_number_id, "name": name})
    path = STATE / f"tenant-{phone_number_id}.yaml"
    path.write_text(yaml.safe_dump(tenant, allow_unicode=True, sort_keys=False))
    return path


def seed(args):
    """What the runs pin their path parameters to, made with the ops CLI: per tenant a key
    with every scope, a key to revoke and a member to remove; the platform's the same."""
    STATE.mkdir(parents=True, exist_ok=True)
    ops("tenant", "put", str(tenant_copy(SECOND_TENANT, "Contract Second Tenant")),
        str(tenant_copy(PROVIDERS_TENANT, "Contract Provider's Tenant")))
    tenants = []
    for tenant in (FIRST_TENANT, SECOND_TENANT):
        key, _ = create_key(tenant, "contract", ALL_SCOPES)
        _, revocable = create_key(tenant, "contract: to revoke", ["read"])
        member = add_member(tenant, f"agent-{tenant}@contract.example.com", "agent")
        tenants.append({"key": key, "parameters": {
            "tenant": tenant, "key_id": revocable, "sub": member, "customer": CUSTOMER,
        }})
    platform_key, _ = create_key(None, "contract", ALL_SCOPES)
    _, revocable = create_key(None, "contract: to revoke", ["read"])
    admin = add_member(None, "admin@contract.example.com", None)
    seeds = {
        "platform_key": platform_key,
        "provider": {"tenant": PROVIDERS_TENANT, "key_id": revocable, "sub": admin},
        "tenants": tenants,
    }
    args.out.write_text(json.dumps(seeds, indent=1))
    print(f"contract: seeded tenants {FIRST_TENANT}, {SECOND_TENANT}, {PROVIDERS_TENANT}, "
          f"their keys and members, and the platform's")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_seed = sub.add_parser("seed")
    p_seed.add_argument("--out", type=Path, required=True)
    p_seed.set_defaults(handler=seed)
    p_run = sub.add_parser("run")
    p_run.add_argument("--base-url", required=True, help="where the api serves /v1")
    p_run.add_argument("--seeds", type=Path, required=True)
    p_run.add_argument("--max-examples", type=int, default=int(os.environ.get("CONTRACT_MAX_EXAMPLES", 25)))
    p_run.add_argument("--seed", type=int, default=int(os.environ.get("CONTRACT_SEED", 13)),
                       help="schemathesis's random seed (fixed: the same cases every run)")
    p_run.set_defaults(handler=check)
    args = parser.parse_args()
    args.handler(args)


def fetch_document(base_url, seconds=600):
    """The document the api serves. The first request under `cargo lambda watch` starts the
    function (building it first when it is not up to date), so it may take a while."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(f"{base_url}/v1/openapi.json", timeout=seconds) as answer:
                return json.load(answer)
        except OSError as error:
            if time.monotonic() > deadline:
                raise SystemExit(f"the api did not serve its document within {seconds} s: {error}")
            time.sleep(1)


def check(args):
    args.base_url = args.base_url.rstrip("/")

    started = time.monotonic()
    document = fetch_document(args.base_url)
    seeds = json.loads(args.seeds.read_text())
    everything = operations(document)
    of_tenant = [label for label in everything
                 if label.split(" ", 1)[1].startswith(TENANT_PREFIX) and label.split(" ", 1)[1] not in PROVIDER_ONLY]
    of_provider = [label for label in everything if label not in of_tenant]

    statuses = STATE / "statuses.jsonl"
    STATE.mkdir(parents=True, exist_ok=True)
    statuses.write_text("")
    runs = []
    for number, tenant in enumerate(seeds["tenants"], 1):
        if of_tenant:
            runs.append((f"tenant-{number}", of_tenant, tenant["key"], tenant["parameters"]))
    if of_provider:
        runs.append(("provider", of_provider, seeds["platform_key"], seeds["provider"]))

    failed = []
    for name, labels, key, parameters in runs:
        code, _ = run(name, args, document, labels, key, parameters, statuses)
        if code != 0:
            failed.append(name)

    answered = {}
    cases = 0
    for line in statuses.read_text().splitlines():
        call = json.loads(line)
        cases += 1
        if call["method"] == call["operation"].split(" ", 1)[0]:
            answered.setdefault(call["operation"], set()).add(call["status"])
    never_2xx = [label for label in everything if not any(200 <= s < 300 for s in answered.get(label, ()))]
    elapsed = time.monotonic() - started
    print(f"contract: {len(everything)} operations ({len(of_tenant)} per tenant x {len(seeds['tenants'])} tenants, "
          f"{len(of_provider)} of the provider), {cases} requests, {elapsed:.0f} s")
    for label in never_2xx:
        print(f"    never answered with a 2xx: {label} (statuses seen: {sorted(answered.get(label, ()))})")
    if failed:
        raise SystemExit(f"contract: checks failed in {', '.join(failed)} (logs in {STATE})")
    if never_2xx:
        raise SystemExit(f"contract: {len(never_2xx)} operation(s) never answered with a 2xx")
    print("contract: every check passed; every operation answered at least once with a 2xx")


if __name__ == "__main__":
    sys.exit(main())
