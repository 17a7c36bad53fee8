#!/usr/bin/env python3
"""Writes the sample events, as `sam local invoke -e` and `cargo lambda invoke --data-file`
take them: events/webhook/ and events/desk/ (API Gateway HTTP API, payload v2, requests),
events/sla-sweep/ and events/off-hours/ (EventBridge Scheduler's input), events/worker/ (SQS
batches from the inbound queue, as the event source mapping delivers them).

Signed events use the local stack's documented test secret (infra/local/stack.py):
app secret `local-app-secret`, verify token `local-verify-token`; desk events the demo
tenant's local desk token `local-desk-token-0123456789abcdefghij` (common.sh load_demo_tenant).
Each folder's `expected.json` says what each event must produce. The worker's messages go
stale after an hour, so the runners (invoke_events.py) give them the current time when they
send them; the timestamps written here are placeholders.
"""

import base64
import hashlib
import hmac
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
OUT = EVENTS / "webhook"
DESK_TOKEN = "local-desk-token-0123456789abcdefghij"
APP_SECRET = b"local-app-secret"
VERIFY_TOKEN = "local-verify-token"
PHONE_NUMBER_ID = "106540352242922"
METADATA = {"display_phone_number": "551130000000", "phone_number_id": PHONE_NUMBER_ID}


def request(method, body=None, headers=None, query=None, base64_body=False, path="/webhook"):
    route = "/desk/{phone_number_id}/{desk_token}" if path.startswith("/desk/") else path
    event = {
        "version": "2.0",
        "routeKey": f"{method} {route}",
        "rawPath": path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
        "headers": {"user-agent": "facebookexternalua", **(headers or {})},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "local.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "173.252.0.1",
                "userAgent": "facebookexternalua",
            },
            "requestId": f"sample-{method.lower()}",
            "routeKey": f"{method} {route}",
            "stage": "$default",
            "time": "23/Nov/2026:12:00:00 +0000",
            "timeEpoch": 1795089600000,
        },
        "isBase64Encoded": base64_body,
    }
    if query:
        event["queryStringParameters"] = query
    if body is not None:
        event["body"] = body
    return event


def webhook_body(messages=(), statuses=(), contacts=()):
    value = {"messaging_product": "whatsapp", "metadata": METADATA}
    if contacts:
        value["contacts"] = list(contacts)
    if messages:
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = list(statuses)
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def signed_post(raw, base64_body=False, secret=APP_SECRET):
    signature = "sha256=" + hmac.new(secret, raw, hashlib.sha256).hexdigest()
    headers = {"content-type": "application/json", "x-hub-signature-256": signature}
    body = base64.b64encode(raw).decode() if base64_body else raw.decode()
    return request("POST", body, headers, base64_body=base64_body)


def contact(wa_id, name):
    return {"profile": {"name": name}, "wa_id": wa_id}


def text(wa_id, wamid, body, ts="1795089600"):
    return {"from": wa_id, "id": wamid, "timestamp": ts, "type": "text", "text": {"body": body}}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    customer = "5511987654321"
    text_body = webhook_body(
        [text(customer, "wamid.sample.text.1", "Olá, preciso de ajuda com meu pedido")],
        contacts=[contact(customer, "Maria Silva")],
    )
    interactive_body = webhook_body(
        [
            {
                "context": {"from": "551130000000", "id": "wamid.sample.menu.1"},
                "from": customer,
                "id": "wamid.sample.button.1",
                "timestamp": "1795089610",
                "type": "interactive",
                "interactive": {"type": "button_reply", "button_reply": {"id": "suporte", "title": "Suporte"}},
            },
            {
                "context": {"from": "551130000000", "id": "wamid.sample.menu.2"},
                "from": customer,
                "id": "wamid.sample.list.1",
                "timestamp": "1795089620",
                "type": "interactive",
                "interactive": {
                    "type": "list_reply",
                    "list_reply": {"id": "segunda_via", "title": "2ª via do boleto", "description": "Receba o boleto"},
                },
            },
        ],
        contacts=[contact(customer, "Maria Silva")],
    )
    status_body = webhook_body(
        statuses=[
            {"id": "wamid.sample.out.1", "status": "delivered", "timestamp": "1795089601", "recipient_id": customer},
            {"id": "wamid.sample.out.1", "status": "read", "timestamp": "1795089605", "recipient_id": customer},
            {
                "id": "wamid.sample.out.2",
                "status": "failed",
                "timestamp": "1795089606",
                "recipient_id": customer,
                "errors": [{"code": 131047, "title": "Re-engagement message", "message": "Re-engagement message"}],
            },
        ]
    )
    batch = [text(f"55119{i:08d}", f"wamid.sample.batch.{i}", f"mensagem {i}") for i in range(50)]
    batch_body = webhook_body(batch, contacts=[contact(m["from"], f"Cliente {i}") for i, m in enumerate(batch)])
    base64_body = webhook_body([text(customer, "wamid.sample.base64.1", "Quero a segunda via")])

    events = {
        "get-verify.json": (
            request("GET", query={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}),
            {"status": 200, "body": "1158201444", "queued": 0},
        ),
        "get-verify-wrong-token.json": (
            request("GET", query={"hub.mode": "subscribe", "hub.verify_token": "wrong-token", "hub.challenge": "1158201444"}),
            {"status": 403, "queued": 0},
        ),
        "post-text.json": (signed_post(text_body), {"status": 200, "queued": 1}),
        "post-interactive.json": (signed_post(interactive_body), {"status": 200, "queued": 2}),
        "post-status.json": (signed_post(status_body), {"status": 200, "queued": 3}),
        "post-batch.json": (signed_post(batch_body), {"status": 200, "queued": 50}),
        "post-base64.json": (signed_post(base64_body, base64_body=True), {"status": 200, "queued": 1}),
        "post-unsigned.json": (
            request("POST", text_body.decode(), {"content-type": "application/json"}),
            {"status": 401, "queued": 0},
        ),
        "post-wrong-signature.json": (signed_post(text_body, secret=b"not-the-app-secret"), {"status": 401, "queued": 0}),
    }
    write(OUT, events)
    write(EVENTS / "desk", desk_events(customer))
    report = ["waiting", "warnings", "breaches", "position_updates", "queries"]
    write(EVENTS / "sla-sweep", {
        "scheduled.json": ({"time": "2026-11-23T17:01:00Z"}, {"report": report, "queued": 0}),
    })
    write(EVENTS / "worker", worker_events())
    write(EVENTS / "off-hours", {
        "scheduled.json": ({"time": "2026-11-23T17:05:00Z"}, {"report": ["tenants", "open", "follow_ups"], "queued": 0}),
    })


def sqs_record(message_id, group, dedup, envelope):
    return {
        "messageId": message_id,
        "receiptHandle": f"receipt-{message_id}",
        "body": json.dumps(envelope, ensure_ascii=False, separators=(",", ":")),
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1795089600000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1795089600000",
            "SequenceNumber": f"1880000000000000000{message_id[-4:]}",
            "MessageGroupId": group,
            "MessageDeduplicationId": dedup,
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:local-inbound.fifo",
        "awsRegion": "us-east-1",
    }


def worker_events():
    """SQS batches for the worker: two customers greeting the bot of the always-open demo
    tenant, each answered on the Graph API; and a record of an envelope version this build
    does not know, which the worker reports failed (and only that one)."""

    def greeting(message_id, customer, name, wamid):
        envelope = {"v": 1, "event": {"message": {
            "phone_number_id": PHONE_NUMBER_ID, "waba_id": "102290129340398",
            "customer": customer, "profile_name": name, "wamid": wamid,
            "timestamp": 1795089600, "type": "text", "text": "Oi",
            "raw": text(customer, wamid, "Oi"),
        }}}
        return sqs_record(message_id, f"{PHONE_NUMBER_ID}:{customer}", wamid, envelope)

    poison = sqs_record(
        "00000000-0000-4000-8000-000000000003", f"{PHONE_NUMBER_ID}:5511900000303", "poison-1",
        {"v": 99, "event": {"message": {"phone_number_id": PHONE_NUMBER_ID}}},
    )
    batch = {"Records": [
        greeting("00000000-0000-4000-8000-000000000001", "5511900000301", "Ana", "wamid.sample.worker.1"),
        greeting("00000000-0000-4000-8000-000000000002", "5511900000302", "Bruno", "wamid.sample.worker.2"),
        poison,
    ]}
    return {
        "batch.json": (batch, {
            "failures": [poison["messageId"]],
            "replies": {"5511900000301": 1, "5511900000302": 1},
            "queued": 0,
        }),
    }


def write(folder, events):
    folder.mkdir(parents=True, exist_ok=True)
    expected = {}
    for name, (event, outcome) in events.items():
        (folder / name).write_text(json.dumps(event, indent=2, ensure_ascii=False) + "\n")
        expected[name] = outcome
    (folder / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    print(f"wrote {len(events)} events to {folder}")


def desk_events(customer):
    """Chatwoot's webhooks for the demo tenant's conversation with `customer`."""
    conversation = {
        "id": 1, "inbox_id": 1, "status": "open", "channel": "Channel::Api",
        "additional_attributes": {"whatsapp_customer": customer, "whatsapp_number": PHONE_NUMBER_ID},
        "meta": {"sender": {"id": 100, "identifier": f"whatsapp:{PHONE_NUMBER_ID}:{customer}"}},
    }
    reply = {
        "event": "message_created", "id": 9001, "content": "Olá, Maria! Sou a Ana, do suporte.",
        "message_type": "outgoing", "content_type": "text", "private": False,
        "created_at": "2026-11-23T17:05:00.000Z",
        "sender": {"id": 3, "name": "Ana", "type": "user"},
        "inbox": {"id": 1, "name": "WhatsApp"}, "account": {"id": 1, "name": "Conecta Fibra"},
        "conversation": conversation,
    }
    note = {**reply, "id": 9002, "content": "nota interna", "private": True}
    resolved = {**conversation, "event": "conversation_status_changed", "status": "resolved",
                "changed_attributes": [{"status": {"previous_value": "open", "current_value": "resolved"}}],
                "updated_at": 1795453800.5}

    def post(payload, token=DESK_TOKEN):
        body = json.dumps(payload, ensure_ascii=False)
        return request("POST", body, {"content-type": "application/json", "user-agent": "Chatwoot"},
                       path=f"/desk/{PHONE_NUMBER_ID}/{token}")

    return {
        "agent-reply.json": (post(reply), {"status": 200, "body": "ok", "queued": 1}),
        "resolved.json": (post(resolved), {"status": 200, "body": "ok", "queued": 1}),
        "private-note.json": (post(note), {"status": 200, "body": "ignored", "queued": 0}),
        "wrong-token.json": (post(reply, token="not-the-desk-token"), {"status": 401, "queued": 0}),
    }


if __name__ == "__main__":
    main()
