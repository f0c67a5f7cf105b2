"""A violation message that names its subject: what exactly a waiver must name to cover it.

A rule's check yields strings; a :class:`Finding` is a string that also carries the *subject* of the
finding (the flag, Helm value path, label key, CIDR, host pattern … it is about) or, for cost, the
*amount* it is about. :mod:`policies.lib.waivers` matches a waiver against the subject, so a waiver covers
the findings it names and no new finding of the same rule on the same resource. Plain strings have no
subject: a waiver of the rule and resource covers them, as before.
"""

from __future__ import annotations


class Finding(str):
    """A violation message with the subject (or amount) a waiver must name."""

    subject: str | None
    amount: float | None
    #: The subject is a dotted path in a tree (a Helm value path): a waiver naming an ancestor covers it.
    tree: bool

    def __new__(
        cls, message: str, subject: str | None = None, amount: float | None = None, tree: bool = False
    ) -> Finding:
        made = super().__new__(cls, message)
        made.subject = subject
        made.amount = amount
        made.tree = tree
        return made


def subject_of(message: str) -> str | None:
    return getattr(message, "subject", None)


def amount_of(message: str) -> float | None:
    return getattr(message, "amount", None)


def named_by(message: str, subjects: tuple[str, ...]) -> bool:
    """Whether ``subjects`` name this finding's subject (for a tree path: it or an ancestor)."""
    subject = subject_of(message)
    if subject is None:
        return True
    if subject in subjects:
        return True
    return bool(getattr(message, "tree", False)) and any(subject.startswith(f"{s}.") for s in subjects)


def shown(message: str) -> str:
    """The message as reported: a finding's subject is written out so that a waiver can copy it."""
    subject = subject_of(message)
    if subject is not None:
        return f"{message} [subject: {subject}]"
    amount = amount_of(message)
    if amount is not None:
        return f"{message} [amount: {amount:.2f}]"
    return str(message)
