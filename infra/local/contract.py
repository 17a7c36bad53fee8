#!/usr/bin/env python3
"""The contract test: schemathesis against the OpenAPI document the api binary serves.

    contract.py seed --out FILE --base-url URL   tenants, keys and members for the run, made
                                                 with the ops CLI on the local stack; people,
                                                 a suppressed customer, campaigns and event
                                                 subscriptions made through the api
    contract.py run --base-url URL --seeds FILE [--max-examples N] [--seed N]

Runs schemathesis once per caller, each with its own valid credentials as an
`Authorization` header: every tenant route with the key of the first tenant, again with the
key of the second, the routes only people may call (approving, rejecting and resuming a
campaign) with each tenant's supervisor's access token, and the provider's routes with the
platform key. Each run pins the path parameters that name stored things (the tenant, a
customer with a conversation, keys and members made for the run) to what was seeded, so
generated and negative data reach the handlers instead of stopping at a 404; each operation
on one campaign is pinned to a campaign of its own, seeded in the state that operation
needs (a draft to edit, one with its audience to submit, a submitted one to approve, ...),
and each operation on one event subscription to a subscription of its own (the deletion's
is gone after its first 2xx).
The checks: no server error, statuses, content types and bodies as the document says, and
invalid data rejected. Then, with plain requests, tenant isolation: each tenant's campaigns
and event subscriptions answer the other tenant's callers exactly as ones that do not
exist.

Fails when a check fails (printing the operation and the request), and when an operation of
the document was never answered with a 2xx in any run: a run where everything is refused
proves nothing. Prints the operation count, the requests and the time taken.

FILE (written by contract.sh from what the ops CLI and the api created) is JSON:
    {"platform_key": "...", "provider": {"tenant": "<pn>", ...path parameters},
     "tenants": [{"key": "...", "supervisor_token": "...", "author": "<sub>",
                  "parameters": {"tenant": "<pn>", "customer": "...", ...},
                  "campaigns": {"<operation>": "<campaign id>", ...},
                  "hooks": {"<operation>": "<subscription id>", ..., "isolation": "<id>"}}, ...]}
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
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


def run(name, args, document, labels, key, parameters, statuses, per_operation=None):
    """One schemathesis run over `labels` as one caller (`key`: an API key or a person's
    access token); returns (exit code, seconds). `per_operation` pins parameters of single
    operations (`{label: {"path.id": ..., "body.field": ...}}`) over `parameters`."""
    STATE.mkdir(parents=True, exist_ok=True)
    # Path parameters naming something seeded are pinned; the others are generated (an
    # operation whose stored things were not seeded then finds nothing, and never gets its 2xx).
    used = set().union(*(parameter_names(document, label) for label in labels)) & set(parameters)
    config = STATE / f"{name}.toml"
    config.write_text(
        "[parameters]\n"
        + "".join(f'"path.{p}" = {toml_value(parameters[p])}\n' for p in sorted(used))
        + "".join(
            f"\n[[operations]]\ninclude-name = {toml_value(label)}\n"
            + "parameters = { "
            + ", ".join(f"{toml_value(p)} = {toml_value(v)}" for p, v in sorted(pinned.items()))
            + " }\n"
            for label, pinned in sorted((per_operation or {}).items())
            if label in labels
        )
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
ALL_SCOPES = ["read", "send", "admin", "campaigns:write", "hooks:manage"]


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


def demo_tenant():
    import yaml

    return yaml.safe_load((ROOT / ".local/demo.yaml").read_text())


def tenant_copy(phone_number_id, name):
    """The demo tenant as the local stack runs it, under its number or another, with
    campaigns enabled (the contract's flag: the campaign routes refuse them otherwise)."""
    import yaml

    tenant = demo_tenant()
    tenant.update({"phone_number_id": phone_number_id, "name": name})
    tenant.setdefault("features", {})["campaigns_enabled"] = True
    path = STATE / f"tenant-{phone_number_id}.yaml"
    path.write_text(yaml.safe_dump(tenant, allow_unicode=True, sort_keys=False))
    return path


# The template the seeded campaigns send, APPROVED at WhatsApp (the document's example).
TEMPLATE = {"name": "promo_novembro", "language": "pt_BR", "category": "MARKETING"}
CAMPAIGN_ROUTE = "/v1/tenants/{tenant}/campaigns/{id}"
# Each operation on one campaign gets a campaign of its own, in the state where the
# operation succeeds: a draft, one with its audience, submitted, running or paused.
CAMPAIGN_STAGES = {
    f"GET {CAMPAIGN_ROUTE}": "draft",
    f"PATCH {CAMPAIGN_ROUTE}": "draft",
    f"POST {CAMPAIGN_ROUTE}/upload": "draft",
    f"POST {CAMPAIGN_ROUTE}/audience": "draft",
    f"POST {CAMPAIGN_ROUTE}/cancel": "draft",
    f"POST {CAMPAIGN_ROUTE}/submit": "imported",
    f"POST {CAMPAIGN_ROUTE}/approve": "submitted",
    f"POST {CAMPAIGN_ROUTE}/reject": "submitted",
    f"POST {CAMPAIGN_ROUTE}/pause": "running",
    f"POST {CAMPAIGN_ROUTE}/resume": "paused",
    f"GET {CAMPAIGN_ROUTE}/report": "running",
}
STAGES = ["draft", "imported", "submitted", "running", "paused"]
HOOK_ROUTE = "/v1/tenants/{tenant}/hooks/{hook_id}"
# Each operation on one subscription gets a subscription of its own; one more is left to
# the isolation check. With the run's creations, a tenant stays within its 10 (then 422).
HOOK_OPERATIONS = [f"GET {HOOK_ROUTE}", f"PATCH {HOOK_ROUTE}", f"DELETE {HOOK_ROUTE}",
                   f"POST {HOOK_ROUTE}/rotate-secret", f"GET {HOOK_ROUTE}/deliveries"]
# Only people approve, reject and resume: these run again with a supervisor's token.
PEOPLE_ONLY = {f"POST {CAMPAIGN_ROUTE}/approve", f"POST {CAMPAIGN_ROUTE}/reject", f"POST {CAMPAIGN_ROUTE}/resume"}


class Api:
    """The api as one caller (an API key or a person's access token)."""

    def __init__(self, base_url, token):
        self.base_url, self.token = base_url.rstrip("/"), token

    def call(self, method, path, body=None, expect=(200, 201, 202, 204)):
        status, answer = request(self.base_url + path, method, self.token, body)
        if status not in expect:
            raise SystemExit(f"contract seed: {method} {path} answered {status}: {answer}")
        return answer


def request(url, method, token, body=None):
    """(status, the JSON answer or its text)."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {token}"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data, headers, method=method), timeout=120) as answer:
            status, text = answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    try:
        return status, json.loads(text) if text else None
    except ValueError:
        return status, text


def approve_template(waba_id):
    """The template APPROVED in the account's WABA item, as Meta's template webhook leaves
    it (the submit check and GET .../templates read it)."""
    import stack

    env = stack.read_env()
    stack.clients(env["AWS_ENDPOINT_URL"])["dynamodb"].put_item(
        TableName=env["TABLE_NAME"],
        Item={
            "pk": {"S": f"WABA#{waba_id}"},
            "sk": {"S": f"TEMPLATE#{TEMPLATE['name']}#{TEMPLATE['language']}"},
            "status": {"S": "APPROVED"},
            "category": {"S": TEMPLATE["category"]},
            "at": {"N": str(int(time.time()))},
        },
    )


def add_supervisor(tenant):
    """A supervisor of the tenant with a password, signed in: their access token."""
    import secrets

    import people

    email = f"supervisor-{tenant}@contract.example.com"
    add_member(tenant, email, "supervisor")
    password = f"Contract-{secrets.token_hex(8)}-1"
    people.create(email, password)  # the invited account, now with a password
    return people.token(email, password)


def upload_audience(key, path, rows):
    """The audience as a CSV through the presigned upload, then imported by its key."""
    upload = key.call("POST", f"{path}/upload")
    csv = "phone,nome\n" + "".join(f"{row['phone']},{row['nome']}\n" for row in rows)
    put = urllib.request.Request(upload["url"], csv.encode(), upload["headers"], method=upload["method"])
    with urllib.request.urlopen(put, timeout=60) as answer:
        if answer.status != 200:
            raise SystemExit(f"contract seed: the presigned upload answered {answer.status}")
    return key.call("POST", f"{path}/audience", {"object_key": upload["object_key"]})


def seed_campaigns(key, supervisor, tenant, author):
    """One campaign per operation of CAMPAIGN_STAGES, written by the key for `author` and
    moved to its stage (approved by the supervisor, who is neither its author nor the
    person it was written for); returns {label: id}."""
    audience = [{"phone": f"55119000000{n:02}", "nome": f"Cliente {n}"} for n in range(1, 4)]
    campaigns = {}
    for number, (label, stage) in enumerate(sorted(CAMPAIGN_STAGES.items()), 1):
        campaign = key.call("POST", f"/v1/tenants/{tenant}/campaigns", {
            "name": f"Contract {number}, for {label}",
            "template_name": TEMPLATE["name"], "template_language": TEMPLATE["language"],
            "parameters": [{"column": "nome"}], "on_behalf_of": author,
        })
        path = f"/v1/tenants/{tenant}/campaigns/{campaign['id']}"
        reached = STAGES.index(stage)
        if reached >= STAGES.index("imported"):
            # Half through the presigned upload, half inline: both import paths work.
            if number % 2:
                imported = upload_audience(key, path, audience)
            else:
                imported = key.call("POST", f"{path}/audience", {"recipients": audience})
            if imported["audience_size"] != len(audience):
                raise SystemExit(f"contract seed: {path} imported {imported}")
        if reached >= STAGES.index("submitted"):
            key.call("POST", f"{path}/submit")
        if reached >= STAGES.index("running"):
            supervisor.call("POST", f"{path}/approve")
        if reached >= STAGES.index("paused"):
            key.call("POST", f"{path}/pause", {"reason": "contract: paused to resume"})
        state = key.call("GET", path)["state"]
        expected = {"imported": "draft"}.get(stage, stage)
        if state != expected:
            raise SystemExit(f"contract seed: {path} is {state}, not {expected}")
        campaigns[label] = campaign["id"]
    return campaigns


def seed_hooks(key, tenant):
    """One event subscription per operation of HOOK_OPERATIONS and one for the isolation
    check, through the api; returns {label: id}."""
    hooks = {}
    for number, label in enumerate([*HOOK_OPERATIONS, "isolation"], 1):
        made = key.call("POST", f"/v1/tenants/{tenant}/hooks", {
            "url": f"https://hooks.contract.example/{tenant}/{number}",
            "events": ["message.received", "conversation.closed"],
            "description": f"Contract, for {label}",
        })
        if not made["secret"].startswith("whsec_"):
            raise SystemExit(f"contract seed: a subscription without its secret: {made}")
        hooks[label] = made["id"]
    return hooks


def seed(args):
    """What the runs pin their path parameters to, made with the ops CLI: per tenant a key
    with every scope, a key to revoke and a member to remove; the platform's the same. Then,
    per tenant, through the api: a supervisor's token, a suppressed customer, a campaign
    for each campaign operation in the state it needs, and an event subscription for each
    subscription operation."""
    STATE.mkdir(parents=True, exist_ok=True)
    fetch_document(args.base_url.rstrip("/"))  # the api is up
    started = time.monotonic()
    ops("tenant", "put", str(tenant_copy(FIRST_TENANT, demo_tenant()["name"])),
        str(tenant_copy(SECOND_TENANT, "Contract Second Tenant")),
        str(tenant_copy(PROVIDERS_TENANT, "Contract Provider's Tenant")))
    # The three share the demo tenant's WhatsApp account.
    approve_template(demo_tenant()["waba_id"])
    tenants = []
    for tenant in (FIRST_TENANT, SECOND_TENANT):
        key, _ = create_key(tenant, "contract", ALL_SCOPES)
        _, revocable = create_key(tenant, "contract: to revoke", ["read"])
        member = add_member(tenant, f"agent-{tenant}@contract.example.com", "agent")
        # A second agent writes the campaigns (the key writes for a named person), so
        # removing `member` in the run leaves them with their author.
        author = add_member(tenant, f"author-{tenant}@contract.example.com", "agent")
        supervisor_token = add_supervisor(tenant)
        api = Api(args.base_url, key)
        # On the list, so reading it answers 200 (the run then takes the customer off and on).
        api.call("PUT", f"/v1/tenants/{tenant}/suppressions/{CUSTOMER}")
        campaigns = seed_campaigns(api, Api(args.base_url, supervisor_token), tenant, author)
        hooks = seed_hooks(api, tenant)
        tenants.append({"key": key, "supervisor_token": supervisor_token, "parameters": {
            "tenant": tenant, "key_id": revocable, "sub": member, "customer": CUSTOMER,
        }, "author": author, "campaigns": campaigns, "hooks": hooks})
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
          f"their keys and members, the platform's, {len(CAMPAIGN_STAGES)} campaigns and "
          f"{len(HOOK_OPERATIONS) + 1} event subscriptions per tenant "
          f"({time.monotonic() - started:.0f} s)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_seed = sub.add_parser("seed")
    p_seed.add_argument("--out", type=Path, required=True)
    p_seed.add_argument("--base-url", required=True, help="where the api serves /v1")
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


# Valid bodies of the campaign operations that take one (the isolation check's requests).
ISOLATION_BODIES = {
    f"PATCH {CAMPAIGN_ROUTE}": {"version": 1, "name": "contract: isolation"},
    f"POST {CAMPAIGN_ROUTE}/audience": {"recipients": [{"phone": "5511900000099", "nome": "Cliente"}]},
    f"POST {CAMPAIGN_ROUTE}/reject": {"reason": "contract: isolation"},
    f"POST {CAMPAIGN_ROUTE}/pause": {"reason": "contract: isolation"},
    f"PATCH {HOOK_ROUTE}": {"enabled": False},
    "POST /v1/tenants/{tenant}/hooks": {"url": "https://hooks.contract.example/isolation",
                                        "events": ["nps.answered"]},
}


def check_isolation(base_url, document, seeds):
    """Another tenant's campaign or event subscription answers exactly as a missing one:
    every operation on one campaign or subscription, by each tenant's key, on the other
    tenant's (named under its own tenant) against an id that was never made, and the other
    tenant's campaign, subscription, suppression list, templates and subscription list
    against a tenant that does not exist. Prints each difference with its operation and
    request; returns how many there were."""
    missing_id = "cmp_00000000000000000000000000"
    missing_hook = "hook_" + "a" * 20
    missing_tenant = "100000000000000"
    campaign_labels = [label for label in operations(document) if label.split(" ", 1)[1].startswith(CAMPAIGN_ROUTE)]
    hook_labels = [label for label in operations(document) if label.split(" ", 1)[1].startswith(HOOK_ROUTE)]
    first, second = seeds["tenants"][0], seeds["tenants"][1]
    differences = 0
    requests = 0

    def same(label, key, body, asked, missing):
        nonlocal differences, requests
        method, route = label.split(" ", 1)
        answers = []
        for parameters in (asked, missing):
            url = base_url + route.format(**parameters)
            answers.append((url, *request(url, method, key, body)))
            requests += 1
        (url, status, answer), (missing_url, missing_status, missing_answer) = answers
        if status != 404 or (status, answer) != (missing_status, missing_answer):
            differences += 1
            print(f"    tenant isolation: {label}: {method} {url} answered {status} {answer}; "
                  f"{method} {missing_url} answered {missing_status} {missing_answer}")

    for own, other in ((first, second), (second, first)):
        tenant, other_tenant = own["parameters"]["tenant"], other["parameters"]["tenant"]
        for label in campaign_labels:
            body = ISOLATION_BODIES.get(label)
            # Approving, rejecting and resuming are people's: a key is refused before any lookup.
            caller = own["supervisor_token"] if label in PEOPLE_ONLY else own["key"]
            campaign = other["campaigns"][label]
            same(label, caller, body, {"tenant": tenant, "id": campaign}, {"tenant": tenant, "id": missing_id})
            same(label, caller, body, {"tenant": other_tenant, "id": campaign},
                 {"tenant": missing_tenant, "id": campaign})
        for label in hook_labels:
            body = ISOLATION_BODIES.get(label)
            hook = other["hooks"]["isolation"]
            same(label, own["key"], body, {"tenant": tenant, "hook_id": hook},
                 {"tenant": tenant, "hook_id": missing_hook})
            same(label, own["key"], body, {"tenant": other_tenant, "hook_id": hook},
                 {"tenant": missing_tenant, "hook_id": hook})
        for label in ("GET /v1/tenants/{tenant}/templates", "GET /v1/tenants/{tenant}/suppressions/{customer}",
                      "GET /v1/tenants/{tenant}/campaigns", "GET /v1/tenants/{tenant}/hooks",
                      "POST /v1/tenants/{tenant}/hooks"):
            customer = own["parameters"]["customer"]
            same(label, own["key"], ISOLATION_BODIES.get(label), {"tenant": other_tenant, "customer": customer},
                 {"tenant": missing_tenant, "customer": customer})
    print(f"--- tenant isolation: {requests} requests, {differences} difference(s)")
    return requests, differences


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
        # Each campaign operation on its own campaign; a key writes for the seeded author.
        per_operation = {label: {"path.id": campaign} for label, campaign in tenant["campaigns"].items()}
        # Each subscription operation on its own subscription.
        per_operation.update({label: {"path.hook_id": hook} for label, hook in tenant["hooks"].items()
                              if label in HOOK_OPERATIONS})
        per_operation["POST /v1/tenants/{tenant}/campaigns"] = {"body.on_behalf_of": tenant["author"]}
        # The seeded draft's version, so a PATCH applies once (then 409: changed meanwhile).
        per_operation.setdefault(f"PATCH {CAMPAIGN_ROUTE}", {})["body.version"] = 1
        if of_tenant:
            runs.append((f"tenant-{number}", of_tenant, tenant["key"], tenant["parameters"], per_operation))
        people_only = [label for label in of_tenant if label in PEOPLE_ONLY]
        if people_only:
            runs.append((f"tenant-{number}-supervisor", people_only, tenant["supervisor_token"],
                         tenant["parameters"], per_operation))
    if of_provider:
        runs.append(("provider", of_provider, seeds["platform_key"], seeds["provider"], None))

    failed = []
    for name, labels, key, parameters, per_operation in runs:
        # Schemathesis reads the document first: wait for the api to serve it (it may be
        # restarting under `cargo lambda watch`).
        fetch_document(args.base_url)
        code, _ = run(name, args, document, labels, key, parameters, statuses, per_operation)
        if code != 0:
            failed.append(name)
    isolation_requests, isolation_failures = check_isolation(args.base_url, document, seeds)
    if isolation_failures:
        failed.append("tenant isolation")

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
          f"{len(of_provider)} of the provider), {cases} requests by schemathesis and {isolation_requests} "
          f"for tenant isolation, {elapsed:.0f} s")
    for label in never_2xx:
        print(f"    never answered with a 2xx: {label} (statuses seen: {sorted(answered.get(label, ()))})")
    if failed:
        raise SystemExit(f"contract: checks failed in {', '.join(failed)} (logs in {STATE})")
    if never_2xx:
        raise SystemExit(f"contract: {len(never_2xx)} operation(s) never answered with a 2xx")
    print("contract: every check passed; every operation answered at least once with a 2xx")


if __name__ == "__main__":
    sys.exit(main())
