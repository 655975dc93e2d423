"""The requests sessions VK communities talk through: one for API calls per API URL and one
for every long poll, shared by all communities of the process, with one SSL context.

vk_api and our long poll are synchronous (requests in worker threads). A session per
community meant two connection pools per community, and urllib3, as requests drives it,
builds a new SSL context and parses the whole CA bundle for every new HTTPS connection
(about 30 ms and 0.7 MB, kept as long as the connection lives): a thousand communities
paid that at least twice each at start. Here every HTTPS connection of these sessions
shares one context per CA bundle, and API calls of all communities reuse one pool.

What is per community stays out of the session: the token travels as a parameter of each
call (vk_api adds it), the long-poll key in each check's query. Cookies are refused, so
one community's cookies can never ride along on another community's request.
"""

from __future__ import annotations

import os.path
import ssl
from functools import lru_cache
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3.util.ssl_ import create_urllib3_context

#: the prefix vk_api writes into every method URL
LIBRARY_PREFIX = "https://api.vk.ru/method/"
#: connections an API session keeps: calls run in the loop's default executor (a few
#: threads), so a few dozen connections are never all busy
API_POOL = 32
#: connections the long-poll session keeps besides one per polling community
SPARE_CONNECTIONS = 8
USER_AGENT = "priemnaya (vk_api)"


@lru_cache(maxsize=8)
def trust_context(location: str) -> ssl.SSLContext:
    """The SSL context urllib3 would build for ``location`` (a CA file or directory),
    built once per location for the process."""
    context = create_urllib3_context()
    if os.path.isdir(location):
        context.load_verify_locations(capath=location)
    else:
        context.load_verify_locations(cafile=location)
    return context


class SharedTrust(HTTPAdapter):
    """An adapter whose HTTPS connections use one shared SSL context per CA bundle instead
    of one new context per connection. The bundle is what requests would use (its default
    bundle, or ``verify`` / ``REQUESTS_CA_BUNDLE`` when set); a client certificate or
    ``verify=False`` leaves requests' own handling in place."""

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        if cert or not verify or not url.lower().startswith("https"):
            super().cert_verify(conn, url, verify, cert)
            return
        location = DEFAULT_CA_BUNDLE_PATH if verify is True else str(verify)
        conn.cert_reqs = "CERT_REQUIRED"
        conn.conn_kw["ssl_context"] = trust_context(location)
        # without a bundle named, urllib3 loads none into the (shared) context again
        conn.ca_certs = conn.ca_cert_dir = None


class PrefixRewriter(SharedTrust):
    """Sends vk_api's hard-coded API URLs to the configured base, with a default timeout."""

    def __init__(self, target: str, timeout: float, pool: int = API_POOL) -> None:
        super().__init__(pool_maxsize=pool)
        self._target = target if target.endswith("/") else target + "/"
        self._timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        url = request.url or ""
        if url.startswith(LIBRARY_PREFIX):
            request.url = self._target + url[len(LIBRARY_PREFIX) :]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


def _session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return session


def make_api_session(api_url: str, timeout: float) -> requests.Session:
    """The session for vk_api's method calls to ``api_url``, for every community using it."""
    session = _session()
    session.mount(LIBRARY_PREFIX, PrefixRewriter(api_url, timeout))
    return session


def make_poll_session(pollers: int) -> requests.Session:
    """The session for the long polls of ``pollers`` communities: each check holds a
    connection for its whole wait, so the pool keeps one per community (a smaller pool
    would open and drop a connection, and its TLS handshake, on every check)."""
    session = _session()
    adapter = SharedTrust(pool_maxsize=pollers + SPARE_CONNECTIONS)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
