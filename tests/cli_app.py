"""An app the command-line tests name with `--app tests.cli_app:<attribute>`, as an operator
names theirs: its sessions in the Redis that `$SESSIONWARD_TEST_REDIS_URL` names."""

from __future__ import annotations

import os

from starlette.applications import Starlette

from sessionward import BearerSigner, BearerTransport, JWTKey, MemoryStore, RedisStore
from sessionward.testing import session_middleware
from tests.apps import SECRET, build_app

BEARER = BearerTransport(BearerSigner(JWTKey("mobile-2026", "HS256", "j" * 32)))
# Unset when the tests import it only for `BEARER`: a port nothing listens on (no I/O yet).
store = RedisStore.from_url(os.environ.get("SESSIONWARD_TEST_REDIS_URL", "redis://127.0.0.1:9/0"))
app = build_app(store, bearer=BEARER, secret_keys=[SECRET], telemetry=False)
middleware = session_middleware(app)
settings = middleware.config
plain = Starlette()  # an app without sessionward
in_memory = build_app(MemoryStore(), secret_keys=[SECRET], telemetry=False)
