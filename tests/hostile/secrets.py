"""Credentials of the hostile suite: distinctive strings, so a leak is found by searching for them."""

from __future__ import annotations

TOKEN = "tok-HOSTILE-api-7f3a9c"
HMAC_SECRET = "hmac-HOSTILE-secret-51d2"
ZENDESK_SECRET = "zd-HOSTILE-secret-0b8e"
JIRA_SECRET = "jira-HOSTILE-secret-c4a1"
FRESHDESK_SECRET = "fd-HOSTILE-secret-9e27"
ACK_SECRET = "ack-HOSTILE-secret-3f60"
