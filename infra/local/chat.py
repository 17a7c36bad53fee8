#!/usr/bin/env python3
"""Talk to the bot on the local stack, as a customer on WhatsApp, and answer as the agent.

Every line you type goes as a signed Meta webhook through the real webhook binary (under
`cargo lambda watch`) into the inbound FIFO queue; a poller does what the SQS event source
mapping does in AWS and hands batches to the real worker binary; the bot's replies come back
through a local fake of the Graph API and are printed here, buttons and lists as numbered
choices (answer with the number or the text).

The fakes are the black-box tests' own (Graph API, Chatwoot, Claude), run by the
`local_fakes` binary (`cargo build -p blackbox --bin local_fakes`), which streams what the
worker sends them as JSON lines. The AI attendant talks to Claude when ANTHROPIC_API_KEY was
set for the local stack; otherwise `--ai-port` runs a clearly labelled local fake of the
Messages API that answers from the tenant's FAQ tool and hands over by tool call, so the
whole path runs offline.

    chat.py --port N --graph-port M --chatwoot-port C [--ai-port K]             interactive
    chat.py --port N --graph-port M --chatwoot-port C [--ai-port K] --script F  one line per line of F

The agents' desk is a local fake of Chatwoot (`--chatwoot-port`): what the worker posts
there (the handoff note, the customer's messages) is printed as `desk>`. You answer as the
agent through the real desk function, with Chatwoot-shaped webhooks:

    /assume [name]   an agent takes the current customer's conversation
    /agent <text>    the agent replies
    /resolve         the agent resolves it (the customer gets the NPS question)
    /sweep [+min]    runs the SLA sweep now (or that many minutes ahead)

`/as <number> <name>` switches to another customer; `/help` lists the commands (and sends
nothing). Ends on /quit, Ctrl-D or the end of the script.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stack  # noqa: E402

APP_SECRET = stack.LOCAL_APP_SECRETS["app_secret"].encode()
# The demo tenant's local secrets (common.sh load_demo_tenant): the desk URL carries the
# desk token; the local Chatwoot accepts the Chatwoot token.
DESK_TOKEN = "local-desk-token-0123456789abcdefghij"
CHATWOOT_TOKEN = "local-chatwoot-token"
PHONE_NUMBER_ID = "106540352242922"
CUSTOMER = "5511987654321"
ROOT = Path(__file__).resolve().parents[2]
FAKES = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target") / "debug" / "local_fakes"

HELP = """\
Commands (/help itself sends nothing to the bot):
  /as <number> [name]  write as another customer, e.g. /as 5511912345678 João
  /assume [name]       as an agent in Chatwoot, take the current customer's conversation
  /agent <text>        as that agent, answer the customer
  /resolve             as that agent, resolve the conversation (the customer gets the NPS question)
  /sweep [+minutes]    run the SLA sweep now, or that many minutes ahead (SLA warnings and breaches)
  /help                this list
  /quit                end the chat (also /exit or Ctrl-D)
Anything else goes to the bot as the customer's message: answer buttons and lists with the
number or the text; "atendente" asks for a person, a question at the menu goes to the AI."""
COMMANDS = ("/as", "/assume", "/agent", "/resolve", "/sweep", "/help", "/quit", "/exit")


def desk_event(payload):
    """Chatwoot calling the desk function at the demo tenant's URL."""
    event = webhook_event(json.dumps(payload, ensure_ascii=False).encode())
    path = f"/desk/{PHONE_NUMBER_ID}/{DESK_TOKEN}"
    event.update({"routeKey": "POST /desk/{phone_number_id}/{desk_token}", "rawPath": path})
    event["requestContext"]["http"]["path"] = path
    del event["headers"]["x-hub-signature-256"]
    return event


def conversation_payload(conversation, customer):
    return {
        "id": conversation, "inbox_id": 1, "status": "open",
        "additional_attributes": {"whatsapp_customer": customer, "whatsapp_number": PHONE_NUMBER_ID},
        "meta": {"sender": {"identifier": f"whatsapp:{PHONE_NUMBER_ID}:{customer}"}},
    }


def agent_payload(command, argument, conversation, customer):
    """The webhook Chatwoot sends for an agent's action."""
    if command == "/agent":
        return {"event": "message_created", "id": time.time_ns(), "content": argument,
                "message_type": "outgoing", "private": False,
                "sender": {"id": 3, "name": "Agente", "type": "user"},
                "conversation": conversation_payload(conversation, customer)}
    payload = conversation_payload(conversation, customer)
    if command == "/assume":
        payload.update({"event": "conversation_updated", "updated_at": time.time(),
                        "changed_attributes": [{"assignee_id": {"previous_value": None, "current_value": 3}}]})
        payload["meta"]["assignee"] = {"id": 3, "name": argument or "Ana", "available_name": argument or "Ana"}
    else:
        payload.update({"event": "conversation_status_changed", "status": "resolved", "updated_at": time.time()})
    return payload


class Fakes:
    """The local fakes (Graph API, Chatwoot, Claude unless a real key is used) in the
    `local_fakes` binary. A thread reads what it streams: the messages sent to customers are
    kept, what the worker posts to Chatwoot is printed as `desk>`."""

    def __init__(self, binary, graph_port, chatwoot_port, ai_port):
        command = [str(binary), "--graph-port", str(graph_port), "--chatwoot-port", str(chatwoot_port),
                   "--chatwoot-token", CHATWOOT_TOKEN]
        command += ["--claude-port", str(ai_port)] if ai_port else ["--no-claude"]
        try:
            self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            text=True, encoding="utf-8", bufsize=1)
        except FileNotFoundError:
            raise SystemExit(f"{binary} is missing: cargo build -p blackbox --bin local_fakes") from None
        ready = self.process.stdout.readline()
        if not ready:
            raise SystemExit(f"{binary} did not start (exit code {self.process.wait()})")
        self.ready = json.loads(ready)
        self.messages = []  # what the worker sent to customers and supervisors
        self.conversations = {}  # customer -> Chatwoot conversation id
        self.synced = 0
        self.changed = threading.Condition()
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        try:
            for line in self.process.stdout:
                event = json.loads(line)
                kind = event["event"]
                if kind == "chatwoot_message":
                    show_desk(event)
                with self.changed:
                    if kind == "graph_message":
                        self.messages.append(event["body"])
                    elif kind == "chatwoot_conversation":
                        customer = event["additional_attributes"]["whatsapp_customer"]
                        self.conversations[customer] = event["id"]
                    elif kind == "sync":
                        self.synced = int(event["id"])
                    self.changed.notify_all()
        finally:
            with self.changed:
                self.synced = None  # the fakes ended
                self.changed.notify_all()

    def sync(self, seconds=60):
        """Returns once every request the fakes answered so far has been read: they write
        each event before they answer, and answer a line on stdin after all of those."""
        with self.changed:
            if self.synced is None:
                raise SystemExit(f"the local fakes stopped (exit code {self.process.wait()})")
            target = self.synced + 1
        self.process.stdin.write(f"{target}\n")
        self.process.stdin.flush()
        with self.changed:
            if not self.changed.wait_for(lambda: self.synced is None or self.synced >= target, timeout=seconds):
                raise SystemExit(f"the local fakes did not answer within {seconds} s")
            if self.synced is None:
                raise SystemExit(f"the local fakes stopped (exit code {self.process.wait()})")

    def close(self):
        self.process.stdin.close()
        self.process.wait()


def show_desk(message):
    """A message the worker posted to Chatwoot, as the agents see it."""
    who = "nota privada" if message["private"] else "cliente"
    attachment = message["attachment"]
    attached = f" [anexo: {attachment['file_name']}, {attachment['bytes']} bytes]" if attachment else ""
    lines = message["content"].splitlines() or [""]
    print(f"desk> #{message['conversation_id']} [{who}] {lines[0]}{attached}")
    for line in lines[1:]:
        print(f"desk>      {line}")
    sys.stdout.flush()


def invoke(port, function, event):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/2015-03-31/functions/{function}/invocations",
        data=json.dumps(event).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=300) as response:
        return json.loads(response.read() or b"null")


def webhook_event(raw):
    signature = "sha256=" + hmac.new(APP_SECRET, raw, hashlib.sha256).hexdigest()
    return {
        "version": "2.0",
        "routeKey": "POST /webhook",
        "rawPath": "/webhook",
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "x-hub-signature-256": signature},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "local",
            "domainPrefix": "local",
            "http": {"method": "POST", "path": "/webhook", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "chat"},
            "requestId": "chat",
            "routeKey": "POST /webhook",
            "stage": "$default",
            "time": "23/Nov/2026:12:00:00 +0000",
            "timeEpoch": 0,
        },
        "body": raw.decode(),
        "isBase64Encoded": False,
    }


def wamid(number, message_id):
    """A wamid shaped as Meta's: base64 of a blob that holds the customer's number."""
    blob = bytes([0x1C, 0x18, len(number)]) + number.encode() + bytes([0x15, 0x02, 0x00, 0x12, 0x18, len(message_id)])
    return "wamid." + base64.b64encode(blob + message_id.encode() + b"\0").decode()


class Customer:
    def __init__(self, port, number=CUSTOMER, name="Maria"):
        self.port = port
        self.number = number
        self.name = name
        self.count = 0
        self.choices = []  # (id, title) of the last interactive message

    def message(self, line):
        self.count += 1
        message = {"from": self.number, "id": wamid(self.number, f"{time.time_ns():020X}"), "timestamp": str(int(time.time()))}
        picked = self.pick(line)
        if picked:
            kind = "button_reply" if self.kind == "button" else "list_reply"
            message.update({"type": "interactive", "interactive": {"type": kind, kind: {"id": picked[0], "title": picked[1]}}})
        else:
            message.update({"type": "text", "text": {"body": line}})
        body = {
            "object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "551130000000", "phone_number_id": PHONE_NUMBER_ID},
                "contacts": [{"profile": {"name": self.name}, "wa_id": self.number}],
                "messages": [message],
            }}]}],
        }
        answer = invoke(self.port, "webhook", webhook_event(json.dumps(body, ensure_ascii=False).encode()))
        if answer.get("statusCode") != 200:
            raise SystemExit(f"webhook answered {answer}")

    def pick(self, line):
        text = line.strip()
        if text.isdigit() and 1 <= int(text) <= len(self.choices):
            return self.choices[int(text) - 1]
        return next((c for c in self.choices if c[1].lower() == text.lower()), None)

    def show(self, message, who="bot"):
        self.choices = []
        kind = message.get("type")
        if message.get("to") != self.number:
            # An SLA alert to a supervisor, not to this customer.
            name = message.get("template", {}).get("name", kind)
            print(f"supervisor {message.get('to')}> [template {name}]")
            return
        if kind == "text":
            print(f"{who}> {message['text']['body']}")
        elif kind in ("image", "audio", "video", "document"):
            print(f"{who}> [{kind}] {message[kind]['link']}")
        elif kind == "interactive":
            interactive = message["interactive"]
            self.kind = interactive["type"]
            print(f"bot> {interactive['body']['text']}")
            if self.kind == "button":
                self.choices = [(b["reply"]["id"], b["reply"]["title"]) for b in interactive["action"]["buttons"]]
            else:
                for section in interactive["action"]["sections"]:
                    self.choices += [(r["id"], r["title"]) for r in section["rows"]]
            for number, (_, title) in enumerate(self.choices, 1):
                print(f"       {number}. {title}")
        elif kind == "template":
            print(f"{who}> [template {message['template']['name']}]")
        sys.stdout.flush()


class Progress:
    """How many queued events the worker has handled (and the poller deleted)."""

    def __init__(self):
        self.handled = 0
        self.changed = threading.Condition()

    def add(self, count):
        with self.changed:
            self.handled += count
            self.changed.notify_all()

    def wait_for(self, target, seconds=120):
        with self.changed:
            return self.changed.wait_for(lambda: self.handled >= target, timeout=seconds)


def poll(sqs, queue_url, port, stop, progress):
    """The SQS event source mapping: batches of up to 10 to the worker; what it reports
    failed stays in the queue and comes back after the visibility timeout."""
    while not stop.is_set():
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            continue
        event = {"Records": [{
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": m["Attributes"], "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:local-inbound.fifo",
            "awsRegion": "us-east-1",
        } for m in messages]}
        answer = invoke(port, "worker", event) or {}
        failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])
            progress.add(len(done))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True, help="cargo lambda watch invoke port")
    parser.add_argument("--graph-port", type=int, required=True, help="run the local fake of the Graph API here")
    parser.add_argument("--ai-port", type=int, help="run the local fake of the Messages API here")
    parser.add_argument("--chatwoot-port", type=int, required=True, help="run the local fake of Chatwoot here")
    parser.add_argument("--fakes", type=Path, default=FAKES, help=f"the local_fakes binary (default {FAKES})")
    parser.add_argument("--script", type=Path)
    parser.add_argument("--expect-replies", type=int, help="exit 1 unless exactly this many replies came")
    args = parser.parse_args()

    env = stack.read_env()
    sqs = stack.clients(env["AWS_ENDPOINT_URL"])["sqs"]
    fakes = Fakes(args.fakes, args.graph_port, args.chatwoot_port, args.ai_port)
    if fakes.ready["claude"]:
        print("AI attendant: a LOCAL FAKE of Claude (no ANTHROPIC_API_KEY); "
              f"its answers start with {fakes.ready['claude_label']}")
    else:
        print("AI attendant: Claude, with the ANTHROPIC_API_KEY given to the local stack")
    stop, progress = threading.Event(), Progress()
    threading.Thread(target=poll, args=(sqs, env["INBOUND_QUEUE_URL"], args.port, stop, progress), daemon=True).start()
    customer = Customer(args.port)
    sent = 0  # messages of every customer in this chat
    lines = args.script.read_text().splitlines() if args.script else None
    print("You are Maria, writing to Conecta Fibra on WhatsApp. /help lists the commands, /quit ends the chat.")
    replies_total = 0
    latencies = []  # customer line -> its replies at the Graph API, seconds
    try:
        while True:
            if lines is not None:
                if not lines:
                    break
                line = lines.pop(0)
                print(f"you> {line}")
            else:
                try:
                    line = input("you> ")
                except EOFError:
                    break
            command, _, argument = line.strip().partition(" ")
            argument = argument.strip()
            if command in ("/quit", "/exit"):
                break
            if not command:
                continue
            if command == "/help":
                print(HELP)
                continue
            if command.startswith("/") and command not in COMMANDS:
                print(f"     (unknown command {command}; /help lists the commands)")
                continue
            if command == "/as":
                if not argument:
                    print("     (usage: /as <number> [name])")
                    continue
                number, _, name = argument.partition(" ")
                customer = Customer(args.port, number, name.strip() or "Cliente")
                print(f"     (now writing as {customer.name})")
                continue
            if command == "/sweep" and argument and not argument.lstrip("+").isdigit():
                print("     (usage: /sweep [+minutes])")
                continue
            if command == "/agent" and not argument:
                print("     (usage: /agent <text>)")
                continue
            seen = len(fakes.messages)
            started = time.monotonic()
            who = "bot"
            if command in ("/agent", "/assume", "/resolve"):
                conversation = fakes.conversations.get(customer.number)
                if conversation is None:
                    print("     (no desk conversation for this customer yet)")
                    continue
                answer = invoke(args.port, "desk", desk_event(agent_payload(command, argument, conversation, customer.number)))
                if answer.get("statusCode") != 200:
                    raise SystemExit(f"desk answered {answer}")
                who = "atendente" if command == "/agent" else "bot"
                sent += answer.get("body") == "ok"
            elif command == "/sweep":
                ahead = int(argument.lstrip("+") or 0)
                at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60 * ahead))
                report = invoke(args.port, "sla-sweep", {"time": at})
                print(f"     (SLA sweep for {at}: {report['waiting']} waiting, {report['warnings']} warning(s), "
                      f"{report['breaches']} breach(es), {report['position_updates']} place update(s))")
                sent += report["warnings"] + report["breaches"] + report["position_updates"]
            else:
                customer.message(line)
                sent += 1
            if not progress.wait_for(sent):
                raise SystemExit("the worker did not handle the message within 120 s; see .local/watch.log")
            fakes.sync()
            replies = fakes.messages[seen:]
            if replies:
                latencies.append(time.monotonic() - started)
            replies_total += len(replies)
            if not replies:
                print("     (no reply: the bot stays silent here)")
            for reply in replies:
                customer.show(reply, who)
    finally:
        stop.set()
        fakes.close()
    print(f"{sent} message(s) sent, {replies_total} repl(ies) received")
    if latencies:
        ordered = sorted(latencies)
        median = ordered[len(ordered) // 2]
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        print(f"reply latency (line typed -> replies at the Graph API): median {median * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms")
    if args.expect_replies is not None and replies_total != args.expect_replies:
        raise SystemExit(f"expected {args.expect_replies} replies, got {replies_total}")


if __name__ == "__main__":
    main()
