"""A tiny PromQL reader: the metric names an expression selects, nothing more.

It is not a parser. It removes string literals, comments, label matchers (``{...}``) and range or
subquery brackets (``[...]``), skips the label lists of ``by``/``without``/``on``/``ignoring``/
``group_left``/``group_right``, and takes every remaining identifier that is not a keyword and not
followed by ``(``, ``by`` or ``without`` (a function or aggregation) as a metric name. Grafana
variables (``$x``, ``${x}``, ``[[x]]``) are ignored. That is enough to check rule and dashboard
queries against the catalogue.
"""

from __future__ import annotations

import re
from functools import lru_cache

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_COMMENT = re.compile(r"#[^\n]*")
_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<variable>\$\{[^}]*\}|\$[A-Za-z0-9_]+|\[\[[^\]]*\]\])
  | (?P<number>(?:0x[0-9a-fA-F]+|\d[\w.]*|\.\d[\w.]*))
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<open>[({\[])
  | (?P<close>[)}\]])
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_KEYWORDS = _GROUPING | frozenset({"bool", "and", "or", "unless", "atan2", "offset", "inf", "nan", "start", "end"})
#: An identifier followed by one of these is a function or aggregation (``sum(``, ``sum by (…) (``).
_NOT_A_METRIC_BEFORE = frozenset({("open", "("), ("ident", "by"), ("ident", "without")})
_PAIRS = {"(": ")", "{": "}", "[": "]"}


class PromQLError(ValueError):
    """The expression's brackets do not balance."""


def _tokens(expr: str) -> list[tuple[str, str]]:
    text = _COMMENT.sub(" ", _STRING.sub('""', expr))
    tokens: list[tuple[str, str]] = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "other"
        if kind not in ("space", "variable"):
            tokens.append((kind, match.group()))
    return tokens


def _skip_group(tokens: list[tuple[str, str]], start: int) -> int:
    """Index just past the bracket group that opens at ``start``."""
    stack: list[str] = []
    for index in range(start, len(tokens)):
        kind, value = tokens[index]
        if kind == "open":
            stack.append(_PAIRS[value])
        elif kind == "close":
            if not stack or stack.pop() != value:
                raise PromQLError(f"unbalanced '{value}'")
            if not stack:
                return index + 1
    raise PromQLError("unclosed bracket")


# A rule's expression is checked when it is rendered and again when it is matched to its model.
@lru_cache(maxsize=1024)
def metric_names(expr: str) -> frozenset[str]:
    """The metric names ``expr`` selects (``foo`` in ``rate(foo{a="b"}[5m])``)."""
    tokens = _tokens(expr)
    names: set[str] = set()
    depth = 0
    index = 0
    while index < len(tokens):
        kind, value = tokens[index]
        following = tokens[index + 1] if index + 1 < len(tokens) else ("", "")
        if kind == "open" and value in "{[":
            index = _skip_group(tokens, index)
            continue
        if kind == "open":
            depth += 1
        elif kind == "close":
            depth -= 1
            if depth < 0:
                raise PromQLError(f"unbalanced '{value}'")
        elif kind == "ident":
            word = value.lower()  # PromQL keywords are case-insensitive
            if word in _GROUPING and following == ("open", "("):
                index = _skip_group(tokens, index + 1)
                continue
            if word not in _KEYWORDS and (following[0], following[1].lower()) not in _NOT_A_METRIC_BEFORE:
                names.add(value)
        index += 1
    if depth != 0:
        raise PromQLError("unclosed '('")
    return frozenset(names)
