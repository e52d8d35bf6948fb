"""The small HTML pages an acknowledgement link answers with, in the policy's language. Pure.

Opening a link (a GET, which link previews, Safe Links and mail scanners do by themselves)
shows `show_page`: the page's own title and lines, who acknowledged it if anyone, and a form
whose button POSTs; only that acknowledges, and `done_page` confirms it. Every text is
HTML-escaped; the pages load nothing from elsewhere and read well on a phone.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import NamedTuple
from zoneinfo import ZoneInfo

from worker.notify.messages import Message

NAME_MAX = 80  # characters of a name typed in the form

_WORDS = {
    "en": {
        "title": "Acknowledge this page",
        "intro": "Acknowledging tells Escalera a person has seen this page: it stops repeating."
        " Opening this link changes nothing.",
        "name": "Your name (optional)",
        "button": "Acknowledge",
        "already": "Already acknowledged by {by} at {at}.",
        "done": "Acknowledged by {by} at {at}. This page will not repeat.",
        "done_title": "Acknowledged",
        "refused_title": "Not acknowledged",
    },
    "es": {
        "title": "Confirmar recepción del aviso",
        "intro": "Al confirmar, Escalera sabe que una persona ha visto el aviso y deja de"
        " repetirlo. Abrir este enlace no cambia nada.",
        "name": "Tu nombre (opcional)",
        "button": "Confirmar recepción",
        "already": "Ya confirmado por {by} el {at}.",
        "done": "Confirmado por {by} el {at}. El aviso no se repetirá.",
        "done_title": "Recepción confirmada",
        "refused_title": "Sin confirmar",
    },
}
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:36rem;margin:1rem auto;padding:0 1rem;"
    "line-height:1.4}h1{font-size:1.3rem}ul{padding-left:1.1rem}li{margin:.2rem 0;"
    "overflow-wrap:anywhere}input,button{font-size:1rem;padding:.6rem;width:100%;"
    "box-sizing:border-box;margin:.3rem 0}button{font-weight:bold}.note{color:#555}"
)


class Acked(NamedTuple):
    """Who acknowledged a page, and when."""

    by: str
    at: datetime


def show_page(
    language: str, message: Message, acked: Acked | None, tz: ZoneInfo, action: str
) -> str:
    """The page a link opens: what is paged, who acknowledged it, and the button (a form that
    POSTs to ``action``, the link itself)."""
    words = _words(language)
    parts = [_about(message)]
    if acked is not None:
        parts.append(f"<p><strong>{_said(words['already'], acked, tz)}</strong></p>")
    parts.append(
        f'<form method="post" action="{escape(action)}">'
        f'<label for="name">{escape(words["name"])}</label>'
        f'<input id="name" name="name" maxlength="{NAME_MAX}" autocomplete="name">'
        f'<button type="submit">{escape(words["button"])}</button></form>'
        f'<p class="note">{escape(words["intro"])}</p>'
    )
    return _document(language, words["title"], "".join(parts))


def done_page(language: str, message: Message, acked: Acked, tz: ZoneInfo, *, first: bool) -> str:
    """The answer to the button: acknowledged now, or already before (by whom, when)."""
    words = _words(language)
    said = _said(words["done" if first else "already"], acked, tz)
    return _document(
        language, words["done_title"], f"<p><strong>{said}</strong></p>" + _about(message)
    )


def refused_page(language: str, reason: str) -> str:
    """A link that does not acknowledge (not valid, expired, its page unknown): why."""
    words = _words(language)
    return _document(language, words["refused_title"], f"<p>{escape(reason)}</p>")


def _about(message: Message) -> str:
    lines = "".join(f"<li>{escape(line)}</li>" for line in message.body.splitlines())
    return f"<h2>{escape(message.title)}</h2><ul>{lines}</ul>"


def _said(template: str, acked: Acked, tz: ZoneInfo) -> str:
    at = f"{acked.at.astimezone(tz):%Y-%m-%d %H:%M %Z}"
    return template.format(by=escape(acked.by), at=escape(at))


def _words(language: str) -> dict[str, str]:
    return _WORDS.get(language, _WORDS["en"])


def _document(language: str, title: str, body: str) -> str:
    lang = language if language in _WORDS else "en"
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )
