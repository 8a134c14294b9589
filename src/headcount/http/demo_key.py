"""The demo's own signing key: made when the demo first needs it, known only to this process.

The safe shape for a page anyone who reaches the server may open:

- The key is created through the same code path as ``POST /system/v1/signing-keys``
  (:func:`~headcount.auth.signing_keys.create_signing_key`): the store gets the public key;
  the private key is loaded into a key object held in this process's memory and nowhere
  else — never stored, never logged, never sent. The key's id is logged, so an operator can
  delete a key left behind by a process that died without its shutdown.
- It belongs to the ``default`` environment (else the oldest one), the one ``make run``
  creates; the demo's beacons go there, under the video id :data:`DEMO_VIDEO_ID`.
- ``GET /demo/token`` hands out tokens for :data:`DEMO_VIDEO_ID` only, valid for
  :data:`TOKEN_LIFETIME`: a token from the demo reads nothing but the demo's own count. The
  same token is handed out again while it has more than :data:`TOKEN_REUSE` left, so anyone
  hammering the URL costs one RSA signature per :data:`TOKEN_REUSE`, not one per request.
- The key is deleted when the process stops (``runtime.on_stop``), so its tokens stop working
  with it (``unknown_key``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.concurrency import run_in_threadpool

from headcount.audit import DEMO, audit
from headcount.auth.environments import DEFAULT_ENVIRONMENT_NAME
from headcount.auth.signing_keys import create_signing_key, delete_signing_key
from headcount.errors import HeadcountError, NotFound
from headcount.runtime import Runtime
from headcount.sdk.signing import load_private_key, sign_viewer_counts
from headcount.stores.control import Environment

__all__ = ["DEMO_VIDEO_ID", "TOKEN_LIFETIME", "TOKEN_REUSE", "DemoKey", "DemoToken"]

log = logging.getLogger("headcount")

DEMO_VIDEO_ID = "headcount-demo"
TOKEN_LIFETIME = 600  # s
TOKEN_REUSE = 300  # s: a token is handed out again while it has more than this left


@dataclass(frozen=True, slots=True)
class DemoToken:
    token: str
    expires_at: int  # epoch seconds

    def __repr__(self) -> str:
        return f"DemoToken(expires_at={self.expires_at}, token=<hidden>)"


@dataclass(slots=True)
class _Signer:
    environment_id: str
    key_id: str
    private_key: rsa.RSAPrivateKey

    def __repr__(self) -> str:  # keep the private key out of logs and tracebacks
        return f"_Signer(key_id={self.key_id!r}, private_key=<hidden>)"


class DemoKey:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._signer: _Signer | None = None
        self._token: DemoToken | None = None
        self._lock = asyncio.Lock()
        runtime.on_stop.append(self.close)
        runtime.on_signing_key_deleted.append(self._forget)

    async def environment(self) -> Environment | None:
        return await run_in_threadpool(self._environment)

    def _environment(self) -> Environment | None:
        environments = sorted(self.runtime.control.list_environments(), key=lambda e: e.created_at)
        for environment in environments:
            if environment.name == DEFAULT_ENVIRONMENT_NAME:
                return environment
        return environments[0] if environments else None

    async def token(self) -> DemoToken:
        """A token for the demo video, fresh enough for a page to use now. Tokens are signed
        with the wall clock (as :func:`~headcount.sdk.signing.sign_viewer_counts` does)."""
        async with self._lock:
            now = time.time()
            if self._token is not None and self._token.expires_at - now > TOKEN_REUSE:
                return self._token
            signer = self._signer or await self._create()
            token = sign_viewer_counts(
                DEMO_VIDEO_ID,
                type="video_id",
                key_id=signer.key_id,
                private_key=signer.private_key,
                expires_in=TOKEN_LIFETIME,
            )
            # The exp it was signed with (sign_viewer_counts reads the clock itself).
            expires_at = jwt.decode(token, options={"verify_signature": False})["exp"]
            self._token = DemoToken(token, int(expires_at))
            return self._token

    async def _create(self) -> _Signer:
        environment = await self.environment()
        if environment is None:
            raise NotFound("There is no environment yet: `headcount init` creates one.")
        now = int(self.runtime.clock())
        issued = await run_in_threadpool(
            create_signing_key, self.runtime.control, environment.id, now
        )
        audit(
            "signing_key.create",
            actor=DEMO,
            subject=issued.key.id,
            environment_id=environment.id,
            at=now,
        )
        # The base64 PEM is dropped here; only the key object lives on, in this process.
        self._signer = _Signer(environment.id, issued.key.id, load_private_key(issued.private_key))
        log.info("demo: signing key %s created (deleted when this process stops)", issued.key.id)
        return self._signer

    def _forget(self, key_id: str) -> None:
        # Deleted by hand through the System API of this process: the next token needs a key.
        if self._signer is not None and self._signer.key_id == key_id:
            self._signer, self._token = None, None

    async def close(self, now: float) -> None:
        signer, self._signer, self._token = self._signer, None, None
        if signer is None:
            return
        try:
            await run_in_threadpool(
                delete_signing_key,
                self.runtime.control,
                signer.environment_id,
                signer.key_id,
                int(now),
            )
        except HeadcountError as exc:  # already deleted by hand, or the store is away
            log.warning("demo: signing key %s not deleted: %s", signer.key_id, exc.message)
            return
        self.runtime.signing_key_deleted(signer.key_id)
        audit(
            "signing_key.delete",
            actor=DEMO,
            subject=signer.key_id,
            environment_id=signer.environment_id,
            at=now,
        )
        log.info("demo: signing key %s deleted", signer.key_id)
