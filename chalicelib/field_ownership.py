"""Who owns each account field (docs/design.md, "The account lifecycle"): stated once.

- The registry's export seeds every field. The row as last imported is kept on the account
  (`Account.imported`): the base of a three-way merge.
- A change made here — a verified email change by the person, a support decision — makes
  the field this service's (`Account.changed_here` says which, when and by whom). No import
  may silently undo it: an import applies a field only where the registry's value changed
  since the last import; where both sides changed it differently, nothing is applied and the
  import reports a conflict. Unlinking never hands a field back.
- Status is two things: the registry's status and support's hold. The registry's "removed"
  always wins (the registry decides who is certified); support's "disabled" is a hold that
  no import lifts, recorded and exported as its own field (`support_hold`), never as the
  registry's status.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from chalicelib.models import Account, utc_now

if TYPE_CHECKING:
    from pynamodb.expressions.update import Action

# The registry row's fields, as stored in Account.imported and compared by the import.
REGISTRY_FIELDS = (
    "first_name",
    "last_name",
    "role",
    "status",
    "primary_email",
    "secondary_email",
    "legacy_username",
)
EMAIL_FIELDS = ("primary_email", "secondary_email")


class Merge(Enum):
    KEEP = "keep"  # the registry did not change it: ours stands
    APPLY = "apply"  # only the registry changed it: take theirs
    CONVERGED = "converged"  # both changed it to the same value: nothing to write
    CONFLICT = "conflict"  # both changed it differently: apply nothing, report


def merge(base: object, ours: object, theirs: object) -> Merge:
    """The three-way rule for one field (values compared as given: normalize first)."""
    if theirs == base:
        return Merge.KEEP
    if ours == base:
        return Merge.APPLY
    if ours == theirs:
        return Merge.CONVERGED
    return Merge.CONFLICT


def effective_status(registry_status: str, support_hold: bool) -> str:
    """removed (registry) > disabled (registry or support's hold) > active."""
    if registry_status == "removed":
        return "removed"
    if support_hold or registry_status == "disabled":
        return "disabled"
    return "active"


@dataclass(frozen=True)
class LocalChange:
    field: str
    at: str
    by: str


def changed_here(account: Account) -> dict[str, LocalChange]:
    raw = account.changed_here.as_dict() if account.changed_here else {}
    return {
        name: LocalChange(name, value.get("at", ""), value.get("by", ""))
        for name, value in raw.items()
        if isinstance(value, dict)
    }


def mark_changed_here(account: Account, fields: tuple[str, ...] | list[str], by: str) -> Action:
    """The update action recording that `fields` were changed here now, by `by`."""
    marks = account.changed_here.as_dict() if account.changed_here else {}
    at = utc_now().strftime("%Y-%m-%dT%H:%M:%SZ")
    for name in fields:
        marks[name] = {"at": at, "by": by}
    return Account.changed_here.set(marks)
