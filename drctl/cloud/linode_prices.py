"""Linode's public price endpoints, read through the official `linode_api4` SDK for
`drctl prices --refresh`.

These endpoints answer without a token, so none is sent: refreshing prices never needs (or
exposes) LINODE_TOKEN. The SDK insists on a token and always sends one, so its session here
drops the Authorization header it adds. The API is the same one LinodeAPI talks to
(DRCTL_LINODE_BASE_URL, else Linode's), and the answers are returned as the API gave them: the
price list decides what to keep.
"""

from __future__ import annotations

from typing import Any

import requests
from linode_api4 import LinodeClient
from linode_api4.errors import ApiError
from requests.adapters import HTTPAdapter

from drctl.cloud.linode import REQUEST_TIMEOUT_SECONDS, LinodeAPIError, linode_base_url

# What each endpoint prices, by the name the price list reads it under.
PRICE_ENDPOINTS = {
    "linode_types": "/linode/types",
    "nodebalancer_types": "/nodebalancers/types",
    "database_types": "/databases/types",
    "object_storage_types": "/object-storage/types",
}
PAGE_SIZE = 500  # the API's largest page: one request per endpoint today
MAX_PAGES = 20  # a runaway `pages` must not loop for ever

_NO_TOKEN = "public-endpoints-need-no-token"  # never sent: the SDK refuses to start without one


class _AnonymousSession(requests.Session):
    """Sends no Authorization header, and every request with a timeout (the SDK passes none)."""

    def __init__(self, timeout: float):
        super().__init__()
        self._timeout = timeout
        self.mount("http://", HTTPAdapter())  # no retries of its own: a refresh is re-run by hand
        self.mount("https://", HTTPAdapter())

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        headers = {k: v for k, v in (kwargs.pop("headers", None) or {}).items() if k.lower() != "authorization"}
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, *args, headers=headers, **kwargs)


def read_price_catalog(base_url: str | None = None,
                       timeout: float = REQUEST_TIMEOUT_SECONDS) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    """(the API's base URL, {endpoint name: every item it lists}); LinodeAPIError saying which
    endpoint failed and why."""
    url = linode_base_url(base_url)
    client = LinodeClient(_NO_TOKEN, base_url=url, retry=False)
    client.session = _AnonymousSession(timeout)
    return url, {name: _all_pages(client, url, path) for name, path in PRICE_ENDPOINTS.items()}


def _all_pages(client: LinodeClient, url: str, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page, pages = 1, 1
    while page <= min(pages, MAX_PAGES):
        answer = _get(client, url, f"{path}?page={page}&page_size={PAGE_SIZE}")
        if not isinstance(answer, dict) or not isinstance(answer.get("data"), list):
            raise LinodeAPIError(f"GET {url}{path} answered without a `data` list: not a Linode price endpoint?")
        items.extend(answer["data"])
        pages = int(answer.get("pages") or 1)
        page += 1
    return items


def _get(client: LinodeClient, url: str, path: str) -> Any:
    try:
        return client.get(path)
    except ApiError as err:
        reasons = "; ".join(err.errors) if err.errors else "no reason given"
        raise LinodeAPIError(f"GET {url}{path.split('?')[0]} answered {err.status}: {reasons}", err.status) from None
    except requests.RequestException as err:
        raise LinodeAPIError(f"cannot reach {url} ({type(err).__name__}): check the network, "
                             "or DRCTL_LINODE_BASE_URL") from None
