"""schemathesis hooks of the contract test (loaded through SCHEMATHESIS_HOOKS): every
response's operation, method and status, one JSON line each in $CONTRACT_STATUSES, so
contract.py can tell which operations were answered with a 2xx."""

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
