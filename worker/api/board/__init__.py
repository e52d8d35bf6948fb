"""The board: Escalera's own web pages for a support lead, served by the ingest service.

At-risk tickets (`rows`), a ticket's timeline and clocks (`clocks`), compliance (`charts`),
operations (`operations`); signed in with an API key's token (`signin`), in the policy's
language (`words`). Server-rendered HTML (Jinja2, `templates/`) with a little plain JavaScript
(`static/`), all shipped in the package: the pages fetch nothing from elsewhere. `routes`
wires them to the reports' queries, which they only read.
"""
