"""Talking to the portals' own REST APIs (Zendesk, Jira, Freshdesk): one patient client."""
