"""Fetching media from http(s) URLs: timeouts, bounded retries with backoff, a size limit."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from pydantic import ConfigDict, Field

from mosaicrec.config import StrictModel
from mosaicrec.errors import MediaDecodeError

__all__ = ["FetchConfig", "fetch_bytes", "resolve_media"]


class FetchConfig(StrictModel):
    model_config = ConfigDict(extra="forbid")

    timeout_s: float = Field(default=10.0, gt=0)
    retries: int = Field(default=2, ge=0)
    backoff_s: float = Field(default=0.5, ge=0)
    max_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    user_agent: str = "mosaicrec/0.1"


def _read_limited(url: str, config: FetchConfig, key: object) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": config.user_agent})
    with urllib.request.urlopen(request, timeout=config.timeout_s) as response:
        declared = response.headers.get("Content-Length")
        if declared is not None and int(declared) > config.max_bytes:
            raise MediaDecodeError(
                f"{url} is {int(declared)} bytes, over the {config.max_bytes}-byte limit", item=key
            )
        body = response.read(config.max_bytes + 1)
    if len(body) > config.max_bytes:
        raise MediaDecodeError(f"{url} is over the {config.max_bytes}-byte limit", item=key)
    return body


def fetch_bytes(url: str, config: FetchConfig | None = None, key: object = None) -> bytes:
    """GET ``url``; retry connection errors and 5xx/429 answers, never other 4xx answers."""
    config = config or FetchConfig()
    last = ""
    for attempt in range(config.retries + 1):
        try:
            return _read_limited(url, config, key)
        except urllib.error.HTTPError as err:
            last = f"HTTP {err.code}"
            if err.code < 500 and err.code != 429:
                break
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as err:
            last = f"{type(err).__name__}: {getattr(err, 'reason', err)}"
        if attempt < config.retries:
            time.sleep(config.backoff_s * 2**attempt)
    raise MediaDecodeError(f"could not fetch {url} ({last})", item=key)


def resolve_media(
    source: str, config: FetchConfig | None = None, key: object = None
) -> str | bytes:
    """A local path is returned as is (the decoder reads it); a URL is fetched to bytes."""
    if source.startswith(("http://", "https://")):
        return fetch_bytes(source, config, key)
    return source
