"""schemathesis hooks of the contract test (loaded through SCHEMATHESIS_HOOKS): every
response's operation, method and status, one JSON line each in $CONTRACT_STATUSES, so
contract.py can tell which operations were answered with a 2xx; and no request the local
emulator cannot carry (a body that is not UTF-8, a header value that is not printable ASCII)."""

import json
import os

import schemathesis

_OUT = open(os.environ["CONTRACT_STATUSES"], "a", buffering=1, encoding="utf-8")


@schemathesis.hook
def after_call(context, case, response):
    operation = case.operation
    _OUT.write(
        json.dumps(
            {
                "operation": f"{operation.method.upper()} {operation.path}",
                # The coverage phase also tries methods the path does not have (405).
                "method": case.method.upper(),
                "status": response.status_code,
            }
        )
        + "\n"
    )


@schemathesis.hook
def filter_case(context, case):
    """Leaves out what `cargo lambda watch` cannot put into an event and answers 500 itself,
    before the function sees it: a body that is not UTF-8 (API Gateway hands such a body
    base64-encoded and the api answers 400: tests/tests/api.rs), and a header value that is
    not printable ASCII (the api refuses such an Idempotency-Key with a 400 naming the
    header: shared::platform::send's tests)."""
    headers = case.headers or {}
    if not all(all(" " <= c <= "~" for c in str(value)) for value in headers.values()):
        return False
    body = case.body
    try:
        if isinstance(body, (bytes, bytearray)):
            bytes(body).decode("utf-8")
        elif isinstance(body, str):
            body.encode("utf-8")
    except UnicodeError:
        return False
    return True
