"""Credentials of the hostile suite: distinctive strings, so a leak is found by searching for them."""

from __future__ import annotations

TOKEN = "tok-HOSTILE-api-7f3a9c"
HMAC_SECRET = "hmac-HOSTILE-secret-51d2"
ZENDESK_SECRET = "zd-HOSTILE-secret-0b8e"
JIRA_SECRET = "jira-HOSTILE-secret-c4a1"
FRESHDESK_SECRET = "fd-HOSTILE-secret-9e27"
ACK_SECRET = "ack-HOSTILE-secret-3f60"
# keys with scopes (ESCALERA_API_KEYS): one scope each; the writer may also write as zendesk
READER_TOKEN = "read-HOSTILE-key-6b1d0e2f"
WRITER_TOKEN = "write-HOSTILE-key-a83c55d1"
ACKER_TOKEN = "ack-HOSTILE-key-2e9f7a40"
