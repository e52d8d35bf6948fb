"""A channel's targets: its URLs, from ``ESCALERA_CHANNEL_<NAME>`` (several separated by spaces
or commas).

A policy names channels; their URLs hold credentials (a webhook's token, a mailbox password),
so they live in the environment, not in the policy, and what a log line may say of them is
their scheme only (`worker.notify.transport.schemes`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

from shared.policy_routes import channel_env
from worker.notify.transport import schemes

_SPLIT = re.compile(r"[\s,]+")


class Targets(NamedTuple):
    urls: list[str]  # none: the channel is not configured
    scheme: str  # of its URLs: what a log line may say of them


def channel_urls(channel: str, environ: Mapping[str, str]) -> list[str]:
    return [url for url in _SPLIT.split(environ.get(channel_env(channel), "")) if url]


def channel_targets(channel: str, environ: Mapping[str, str]) -> Targets:
    urls = channel_urls(channel, environ)
    return Targets(urls, schemes(urls))


def not_configured(channel: str) -> str:
    """The error of a notification to a channel without URLs (names the variable to set)."""
    return f"{channel_env(channel)} is not set"
