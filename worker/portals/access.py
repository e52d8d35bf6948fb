"""Signing in to a portal's REST API with what its integration settings name.

The settings hold the portal's address and the *names* of the environment variables that hold
its credentials; the values live only in the environment. Each portal signs in its own way:
Zendesk as ``<e-mail>/token`` with an API token, Jira with an e-mail and an API token, Freshdesk
with an agent's API key and ``X``. `escalera sync` and the write-back channel both sign in here.
An error names the setting or the variable to set, never a value.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import NamedTuple

from shared.errors import EscaleraError
from shared.integrations import Portal
from worker.portals.http import Credentials, PortalApi


class _SignIn(NamedTuple):
    example: str  # the portal's address, as an example
    user: str | None  # what the user variable holds; None: the portal needs no user
    token: str  # what the token variable holds


_SIGN_IN = {
    "zendesk": _SignIn(
        "https://acme.zendesk.com", "the e-mail of the API token's user", "a Zendesk API token"
    ),
    "jira": _SignIn("https://acme.atlassian.net", "the API user's e-mail", "the API token"),
    "freshdesk": _SignIn(
        "https://acme.freshdesk.com", None, "the API key of the agent Escalera acts as"
    ),
}


def portal_api(
    source: str,
    section: Portal | None,
    environ: Mapping[str, str],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> PortalApi:
    """The API client of ``source``'s portal (zendesk, jira or freshdesk), signed in with the
    credentials its ``section`` names (`EscaleraError` naming what is missing)."""
    how = _SIGN_IN.get(source)
    if how is None:
        raise EscaleraError(f"{source}: not a portal Escalera can call (zendesk, jira, freshdesk)")
    if section is None or section.base_url is None:
        raise EscaleraError(
            f"{source}: `base_url` is not set in the {source}: section of the integration "
            f"settings (ESCALERA_INTEGRATIONS): the portal's address, e.g. {how.example}"
        )
    user = None
    if how.user is not None:
        user = _variable(source, environ, "api_user_env", section.api_user_env, how.user)
    token = _variable(source, environ, "api_token_env", section.api_token_env, how.token)
    if user is None:  # Freshdesk: the API key is the user, the password is anything
        credentials = Credentials(token, "X")
    else:
        credentials = Credentials(f"{user}/token" if source == "zendesk" else user, token)
    return PortalApi(str(section.base_url), credentials, sleep=sleep)


def _variable(
    source: str, environ: Mapping[str, str], setting: str, name: str | None, holds: str
) -> str:
    """The value of the variable ``setting`` names; an error names the setting or the variable,
    never a value."""
    if name is None:
        raise EscaleraError(
            f"{source}: `{setting}` is not set in the {source}: section of the integration "
            f"settings: name the environment variable holding {holds}"
        )
    value = environ.get(name, "").strip()
    if not value:
        raise EscaleraError(
            f"{source}: the variable {name} (`{setting}`) is not set or empty: export {holds} in it"
        )
    return value
