#!/usr/bin/env python3
"""The local stack: moto server standing in for DynamoDB, SQS, Secrets Manager and Cognito.

    stack.py up [--port N] [--host A]  start moto (on 127.0.0.1 or A), create the template's
                             queues, table, secrets, user pool and app client,
                             write .local/stack.env (the functions' environment)
    stack.py down            stop moto
    stack.py queued          print (and delete) what the inbound queue holds

Resource names and the functions' environment variables are read from template.yaml, so the
local stack uses exactly what the template defines (with the stack name `local`).
"""

import argparse
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import yaml

ROOT = Path(__file__).resolve().parents[2]
STATE = ROOT / ".local"
STACK_NAME = "local"
REGION = "us-east-1"
ACCOUNT = "123456789012"

# The documented local test secret: events/ are signed with it.
LOCAL_APP_SECRETS = {
    "app_secret": "local-app-secret",
    "verify_token": "local-verify-token",
}
# The worker's secret: a real key when one is given; otherwise the chat's local fake of
# Claude accepts this one.
LOCAL_AI_SECRETS = {
    "anthropic_api_key": os.environ.get("ANTHROPIC_API_KEY") or "local-fake-anthropic-key",
}
# The api function's: its cursor key, random like the template's generated one.
LOCAL_API_SECRETS = {"cursor_key": secrets.token_hex(32)}
# The template's secrets (by logical id) and their local values.
LOCAL_SECRETS = {"AppSecret": LOCAL_APP_SECRETS, "AiSecret": LOCAL_AI_SECRETS, "ApiSecret": LOCAL_API_SECRETS}
# The per-tenant secrets are not the template's: `ops tenant secret` and the api (event
# subscriptions) make them under these prefixes, which reach .local/stack.env from the
# functions' environment (stack name `local`): `local/tenants/<pn>`, `local/desk/<pn>`,
# `local/hooks/<pn>`.
TENANT_SECRET_PREFIXES = ("TENANT_SECRET_PREFIX", "DESK_SECRET_PREFIX", "HOOKS_SECRET_PREFIX")


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (!Ref, !Sub, !GetAtt, ...) as their long form."""


def _intrinsic(loader, suffix, node):
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template():
    with open(ROOT / "template.yaml") as f:
        return yaml.load(f, Loader=CfnLoader)


NO_VALUE = object()


class Resolver:
    """Resolves the intrinsics the template uses, against what the local stack created."""

    def __init__(self, template):
        self.template = template
        self.refs = {}  # logical id -> Ref value
        self.attrs = {}  # (logical id, attribute) -> value
        self.params = {
            name: spec.get("Default", "")
            for name, spec in template.get("Parameters", {}).items()
        }

    def condition(self, name):
        """The template's conditions are `!Not [!Equals [!Ref Parameter, ""]]`."""
        (equals,) = self.template["Conditions"][name]["Fn::Not"]
        left, right = self(equals["Fn::Equals"])
        return left != right

    def __call__(self, value):
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "Fn::If" in value:
            condition, then, otherwise = value["Fn::If"]
            return self(then if self.condition(condition) else otherwise)
        if "Ref" in value:
            name = value["Ref"]
            if name in self.params:
                return self.params[name]
            return {"AWS::StackName": STACK_NAME, "AWS::Region": REGION, "AWS::NoValue": NO_VALUE}.get(name) or self.refs[name]
        if "Fn::Sub" in value:
            text = value["Fn::Sub"]
            for key, replacement in {
                "${AWS::StackName}": STACK_NAME,
                "${AWS::Region}": REGION,
                "${AWS::AccountId}": ACCOUNT,
                "${AWS::URLSuffix}": "amazonaws.com",
            }.items():
                text = text.replace(key, replacement)
            # ${Resource} is its Ref, ${Resource.Attribute} its GetAtt.
            return re.sub(
                r"\$\{([A-Za-z0-9]+)(?:\.([A-Za-z0-9.]+))?\}",
                lambda m: self.attrs[(m[1], m[2])] if m[2] else self.refs[m[1]],
                text,
            )
        if "Fn::GetAtt" in value:
            logical, attribute = value["Fn::GetAtt"]
            return self.attrs[(logical, attribute)]
        return {k: self(v) for k, v in value.items()}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url, seconds=30):
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise SystemExit(f"moto did not answer on {url} within {seconds}s")
            time.sleep(0.1)


def clients(endpoint):
    session = boto3.session.Session(
        aws_access_key_id="local", aws_secret_access_key="local", region_name=REGION
    )
    return {
        name: session.client(name, endpoint_url=endpoint)
        for name in ("sqs", "dynamodb", "secretsmanager", "sns", "cognito-idp", "s3")
    }


# CloudFormation's names for CreateUserPool's parameters, where they differ.
USER_POOL_PARAMETERS = {"UserPoolName": "PoolName"}


def create_people_pool(cognito, resolve, resources):
    """The template's user pool and app client, and nothing else: who may do what is kept in
    the table, not in Cognito groups."""
    pools = [k for k, r in resources.items() if r["Type"] == "AWS::Cognito::UserPool"]
    for logical in pools:
        props = resolve(resources[logical]["Properties"])
        mfas = props.pop("EnabledMfas", [])
        params = {USER_POOL_PARAMETERS.get(k, k): v for k, v in props.items()}
        pool = cognito.create_user_pool(**params)["UserPool"]
        if "SOFTWARE_TOKEN_MFA" in mfas:
            cognito.set_user_pool_mfa_config(
                UserPoolId=pool["Id"],
                SoftwareTokenMfaConfiguration={"Enabled": True},
                MfaConfiguration=props.get("MfaConfiguration", "OFF"),
            )
        resolve.refs[logical] = pool["Id"]
        resolve.attrs[(logical, "Arn")] = pool["Arn"]
        resolve.attrs[(logical, "ProviderURL")] = f"cognito-idp.{REGION}.amazonaws.com/{pool['Id']}"
    for logical, resource in resources.items():
        if resource["Type"] == "AWS::Cognito::UserPoolClient":
            props = resolve(resource["Properties"])
            client = cognito.create_user_pool_client(**props)["UserPoolClient"]
            resolve.refs[logical] = client["ClientId"]
    if len(pools) != 1:
        raise SystemExit(f"stack.py expects one user pool in the template, found {len(pools)}")
    return resolve.refs[pools[0]]


def create_resources(endpoint):
    template = load_template()
    resolve = Resolver(template)
    aws = clients(endpoint)
    resources = template["Resources"]

    # Queues a redrive policy points at must exist first.
    queues = [k for k, r in resources.items() if r["Type"] == "AWS::SQS::Queue"]
    queues.sort(key=lambda k: "RedrivePolicy" in resources[k]["Properties"])
    for logical in queues:
        props = resolve(resources[logical]["Properties"])
        name = props.pop("QueueName")
        attributes = {k: json.dumps(v) if isinstance(v, dict) else str(v).lower() if isinstance(v, bool) else str(v) for k, v in props.items()}
        url = aws["sqs"].create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = aws["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        resolve.refs[logical] = url
        resolve.attrs[(logical, "Arn")] = arn
        resolve.attrs[(logical, "QueueName")] = name

    pool_id = create_people_pool(aws["cognito-idp"], resolve, resources)

    for logical, resource in resources.items():
        if resource["Type"] == "AWS::S3::Bucket":
            # CloudFormation names it after the stack; locally its logical id will do.
            name = resource["Properties"].get("BucketName") or logical.lower()
            aws["s3"].create_bucket(Bucket=name)
            resolve.refs[logical] = name
            continue
        if resource["Type"] == "AWS::SNS::Topic":
            # Only the name: moto needs no key, and the topic's key is not created locally.
            name = resolve(resource["Properties"]["TopicName"])
            resolve.refs[logical] = aws["sns"].create_topic(Name=name)["TopicArn"]
            continue
        if resource["Type"] not in ("AWS::DynamoDB::Table", "AWS::SecretsManager::Secret"):
            continue
        props = resolve(resource["Properties"])
        if resource["Type"] == "AWS::DynamoDB::Table":
            name = props["TableName"]
            aws["dynamodb"].create_table(
                TableName=name,
                BillingMode=props["BillingMode"],
                AttributeDefinitions=props["AttributeDefinitions"],
                KeySchema=props["KeySchema"],
                **({"GlobalSecondaryIndexes": props["GlobalSecondaryIndexes"]} if "GlobalSecondaryIndexes" in props else {}),
            )
            ttl = props.get("TimeToLiveSpecification")
            if ttl:
                aws["dynamodb"].update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
            resolve.refs[logical] = name
        elif resource["Type"] == "AWS::SecretsManager::Secret":
            if logical not in LOCAL_SECRETS:
                raise SystemExit(f"stack.py has no local value for the template's secret {logical}")
            arn = aws["secretsmanager"].create_secret(
                Name=props["Name"], SecretString=json.dumps(LOCAL_SECRETS[logical])
            )["ARN"]
            resolve.refs[logical] = arn

    env = {}
    globals_env = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    env.update(resolve(globals_env))
    for resource in resources.values():
        if resource["Type"] == "AWS::Serverless::Function":
            variables = resource["Properties"].get("Environment", {}).get("Variables", {})
            env.update(resolve(variables))
    env = {k: v for k, v in env.items() if v != NO_VALUE}
    missing = [name for name in TENANT_SECRET_PREFIXES if name not in env]
    if missing:
        raise SystemExit(f"template.yaml sets no {', '.join(missing)} for any function")
    env["INBOUND_DLQ_URL"] = resolve.refs["InboundDeadLetterQueue"]
    env["CAMPAIGN_DLQ_URL"] = resolve.refs["CampaignDeadLetterQueue"]
    # The hooks queue: the producers (worker, api) send to it, the hook delivery reads it.
    env["HOOKS_QUEUE_URL"] = resolve.refs["HooksQueue"]
    env["HOOKS_DLQ_URL"] = resolve.refs["HooksDeadLetterQueue"]
    # On AWS the api derives the keys' URL from the issuer; moto serves them at its own address
    # (and signs every pool's tokens with one public key, so only the issuer tells pools apart).
    env["COGNITO_USER_POOL_ID"] = pool_id
    env["COGNITO_JWKS_URL"] = f"{endpoint}/{pool_id}/.well-known/jwks.json"
    return env


def up(args):
    STATE.mkdir(exist_ok=True)
    if (STATE / "moto.pid").exists():
        down(args)
    port = args.port or free_port()
    endpoint = f"http://{args.host}:{port}"
    log = open(STATE / "moto.log", "w")
    moto = subprocess.Popen(
        [str(ROOT / ".venv/bin/python"), str(ROOT / "infra/local/moto_server.py"), "-H", args.host, "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    (STATE / "moto.pid").write_text(str(moto.pid))
    wait_for(f"{endpoint}/moto-api/")
    env = create_resources(endpoint)
    env.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "RUST_LOG": env.get("RUST_LOG", "info"),
        }
    )
    (STATE / "stack.env").write_text("".join(f"{k}={v}\n" for k, v in sorted(env.items())))
    print(f"local stack up: moto on {endpoint} (pid {moto.pid}); environment in {STATE / 'stack.env'}")


def down(_args):
    pid_file = STATE / "moto.pid"
    if not pid_file.exists():
        return
    try:
        os.killpg(int(pid_file.read_text()), signal.SIGTERM)
    except (ProcessLookupError, ValueError):
        pass
    pid_file.unlink()
    print("local stack down")


def read_env():
    return dict(
        line.split("=", 1) for line in (STATE / "stack.env").read_text().splitlines() if "=" in line
    )


def drain(sqs, queue_url):
    """Receives and deletes everything the queue holds."""
    received = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", [])
        if not batch:
            return received
        received.extend(batch)
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )


def describe(messages):
    """One line per queued envelope: its queue keys and what it carries."""
    for message in messages:
        attrs = message["Attributes"]
        envelope = json.loads(message["Body"])
        kind, event = next(iter(envelope["event"].items()))
        detail = event.get("type") or event.get("status") or "-"
        extra = f"text={event['text']!r}" if event.get("text") else ""
        if event.get("reply"):
            extra = f"reply={event['reply']['id']}"
        if event.get("error_codes"):
            extra = f"errors={event['error_codes']}"
        yield (
            f"v{envelope['v']} {kind}:{detail:<11} group={attrs['MessageGroupId']} "
            f"dedup={attrs['MessageDeduplicationId']} {extra}"
        )


def queued(_args):
    env = read_env()
    messages = drain(clients(env["AWS_ENDPOINT_URL"])["sqs"], env["INBOUND_QUEUE_URL"])
    for line in describe(messages):
        print(line)
    print(f"{len(messages)} envelope(s) were queued")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up")
    p_up.add_argument("--port", type=int, default=0)
    p_up.add_argument(
        "--host", default="127.0.0.1",
        help="the address moto listens on: loopback, or the docker bridge's gateway for containers (sam local)",
    )
    p_up.set_defaults(run=up)
    sub.add_parser("down").set_defaults(run=down)
    sub.add_parser("queued").set_defaults(run=queued)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    sys.exit(main())
