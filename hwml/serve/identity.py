"""Who a visitor is: a private token the browser keeps, not Gradio's per-page session.

Gradio's `session_hash` is new on every page load, so a reload or a second tab would lose a
visitor's runs. The page instead keeps a random token in the browser's local storage
(`gr.BrowserState`), sends it once on load, and the server binds that page's session to it:
every later event of the page is looked up here (`owner`). The token names the visitor's runs
folder (hashed by `hwml.serve.workspace`, so no client string ever becomes a path) and its
enrolments; a client that never loaded the page (an API script) is its own session.

On a laptop (not a Space, listening on loopback: `hwml.settings.private_runs` off) there is one
owner, `LOCAL_OWNER`: every browser, tab and script on the machine sees every run.

`client_address` is the visitor's address where the Space's proxy passes one
(`X-Forwarded-For`); the fair-share limits (`hwml.serve.jobs`) count runs per token and per address.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass

from hwml import settings

LOCAL_OWNER = "local"  # the one owner on a laptop
TOKEN_PREFIX = "v-"
TOKEN_RE = re.compile(r"^v-[0-9a-f]{32}$")
MAX_BOUND_SESSIONS = 20_000  # page sessions remembered; the oldest are forgotten first


def new_token() -> str:
    """A fresh visitor token: 128 random bits, unguessable, so nobody can name another's runs."""
    return TOKEN_PREFIX + secrets.token_hex(16)


def valid_token(token) -> bool:
    return isinstance(token, str) and bool(TOKEN_RE.match(token))


@dataclass(frozen=True)
class Visitor:
    """Who asks: the owner of runs and enrolments, and the client address where one is known."""

    owner: str
    address: str | None = None


def client_address(request) -> str | None:
    """The visitor's address on a Space (its proxy's `X-Forwarded-For`, first entry); None
    elsewhere, where every visitor may come through one address (a laptop, a classroom NAT)."""
    if request is None or not settings.on_space():
        return None
    headers = getattr(request, "headers", None) or {}
    forwarded = headers.get("x-forwarded-for") if hasattr(headers, "get") else None
    if forwarded:
        first = str(forwarded).split(",")[0].strip()
        return first[:64] or None
    client = getattr(request, "client", None)
    host = getattr(client, "host", None)
    return str(host)[:64] if host else None


class Identities:
    """Page session -> visitor token, bound when the page loads (thread-safe, bounded)."""

    def __init__(self, private: bool | None = None):
        self.private = settings.private_runs() if private is None else private
        self._lock = threading.Lock()
        self._bound: OrderedDict[str, str] = OrderedDict()

    def bind(self, session_hash: str | None, token) -> str:
        """Tie a page session to the browser's token; returns the token to keep (a new one
        when the browser had none or sent something that is not a token)."""
        token = token if valid_token(token) else new_token()
        if session_hash:
            with self._lock:
                self._bound[session_hash] = token
                self._bound.move_to_end(session_hash)
                while len(self._bound) > MAX_BOUND_SESSIONS:
                    self._bound.popitem(last=False)
        return token

    def owner(self, session_hash: str | None) -> str:
        """Whose runs a page's event acts on: the bound token, else the page session itself."""
        if not self.private:
            return LOCAL_OWNER
        with self._lock:
            token = self._bound.get(session_hash or "")
        return token or session_hash or "anonymous"

    def visitor(self, request) -> Visitor:
        return Visitor(self.owner(getattr(request, "session_hash", None)), client_address(request))
