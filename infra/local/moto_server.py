"""Starts moto's server with one speed-up for the local stack.

moto 5.2.5 computes every FIFO queue attribute on each send, reading the clock through
datetime arithmetic once per queued message; with a thousand messages queued a single
SendMessageBatch takes over a second. The same clock in milliseconds from time.time()
keeps moto's behaviour and makes it usable for bulk tests.

The user pool's and app client's ids are hashes of their names and settings (moto's `HASH`
strategy), not random: the same on every start, so `.local/stack.env` and a signed-in
person's configuration stay valid across restarts of the local stack.

DynamoDB applies each write atomically; moto's threaded server does not: two concurrent
`ADD`s to one item (campaign counters from several senders) can lose one. One lock around
moto's writes makes the local stack behave as DynamoDB does.
"""

import functools
import os
import sys
import threading
import time

os.environ.setdefault("MOTO_COGNITO_IDP_USER_POOL_ID_STRATEGY", "HASH")
os.environ.setdefault("MOTO_COGNITO_IDP_USER_POOL_CLIENT_ID_STRATEGY", "HASH")

import moto.sqs.models
from moto.core.utils import unix_time_millis as _unix_time_millis
from moto.server import main


def _fast_unix_time_millis(dt=None):
    return time.time() * 1000.0 if dt is None else _unix_time_millis(dt)


moto.sqs.models.unix_time_millis = _fast_unix_time_millis

import moto.dynamodb.models

_WRITES = threading.RLock()


def _atomic(write):
    @functools.wraps(write)
    def locked(*args, **kwargs):
        with _WRITES:
            return write(*args, **kwargs)

    return locked


for _name in ("put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items"):
    _backend = moto.dynamodb.models.DynamoDBBackend
    setattr(_backend, _name, _atomic(getattr(_backend, _name)))

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
