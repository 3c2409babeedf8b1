"""The page's vocabulary: the `;` modifiers of its URI, the `st` codes an
admin action ends with, and the admin form's actions (HAProxy's names),
each mapped to the runtime API command it runs. Pure values, shared by the
request logic and the HTML page.
"""

from __future__ import annotations

from dataclasses import dataclass

# `;st=<code>` after an admin action: HAProxy's codes, with the banner text
# and the row colour the page shows them in.
STATUS_BANNERS: dict[str, tuple[str, str]] = {
    "DONE": ("Action processed successfully.", "active_up"),
    "NONE": ("Nothing has changed.", "active_going_down"),
    "PART": ("Action partially processed: some servers were not changed.", "active_going_down"),
    "ERRP": ("Action not processed because of invalid parameters: no such backend, server or action.",
             "active_down"),
    "EXCD": ("Action not processed: the form was too large.", "active_down"),
    "DENY": ("Action denied: this page has no admin rights.", "active_down"),
    "UNKN": ("Unexpected result.", "active_down"),
}

# The admin form's actions (HAProxy's names), each as the runtime API
# command it runs on `<backend>/<server>`, and the label the page shows.
ADMIN_ACTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ready": ("Set state to READY", ("set", "server", "{}", "state", "ready")),
    "drain": ("Set state to DRAIN", ("set", "server", "{}", "state", "drain")),
    "maint": ("Set state to MAINT", ("set", "server", "{}", "state", "maint")),
    "dhlth": ("Health: disable checks", ("disable", "health", "{}")),
    "ehlth": ("Health: enable checks", ("enable", "health", "{}")),
    "hrunn": ("Health: force UP", ("set", "server", "{}", "health", "up")),
    "hnolb": ("Health: force NOLB", ("set", "server", "{}", "health", "stopping")),
    "hdown": ("Health: force DOWN", ("set", "server", "{}", "health", "down")),
    "shutdown": ("Kill sessions", ("shutdown", "sessions", "server", "{}")),
}


@dataclass(frozen=True)
class PageOptions:
    """The `;` modifiers after the page's URI."""

    csv: bool = False
    json: bool = False
    typed: bool = False
    hide_down: bool = False  # ;up
    hide_maint: bool = False  # ;no-maint
    norefresh: bool = False
    status: str | None = None  # ;st=DONE after an admin action

    def suffix(self, *, up: bool | None = None, norefresh: bool | None = None) -> str:
        """The view modifiers as a URI suffix, with `up`/`norefresh` overridden."""
        up = self.hide_down if up is None else up
        norefresh = self.norefresh if norefresh is None else norefresh
        return (";up" if up else "") + (";no-maint" if self.hide_maint else "") + (
            ";norefresh" if norefresh else "")


def parse_options(rest: str) -> PageOptions:
    """The modifiers in what follows the URI (`;csv;norefresh`); unknown
    words are ignored, as HAProxy does."""
    words = set()
    status = None
    for word in rest.split(";"):
        if word.startswith("st="):
            code = word[3:].upper()
            status = code if code in STATUS_BANNERS else "UNKN"
        elif word:
            words.add(word)
    return PageOptions(csv="csv" in words, json="json" in words, typed="typed" in words,
                       hide_down="up" in words, hide_maint="no-maint" in words,
                       norefresh="norefresh" in words, status=status)
