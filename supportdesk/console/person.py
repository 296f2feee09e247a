"""The console's person page: one screen that answers "why can't they get in?".

The facts (supportdesk.person), the diagnosis in plain words with the next step
(supportdesk.diagnosis) and the audit trail as a timeline with actor names
(supportdesk.timeline), for `GET /people/<nr_number>` (routes/person_routes.py). Staff
actors are named from the staff list, read once and only when the page names one.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.accounts import ROLE_LABELS as ROLE_NAMES
from supportdesk import diagnosis, person, timeline
from supportdesk.console import staff
from supportdesk.console.permissions import ROLE_LABELS

MAX_CURSOR_LENGTH = 100


@dataclass(frozen=True)
class PersonPage:
    facts: person.Person
    findings: list[diagnosis.Finding]
    entries: list[timeline.Entry]
    names: dict[str, timeline.StaffName]

    def helpers(self) -> dict:
        """What person.html calls to say things in words."""
        return {
            "when": person.when,
            "actor": lambda name: timeline.actor_phrase(name, {}, self.facts, self.names),
            "how_linked": diagnosis.how_linked,
            "refusal_meaning": diagnosis.refusal_meaning,
            "role_names": ROLE_NAMES,
        }


def page(nr_number: str, older_than: str | None = None) -> PersonPage | None:
    """The page's content, or None when there is no such account."""
    cursor = (older_than or "").strip()[:MAX_CURSOR_LENGTH] or None
    facts = person.load(nr_number, older_than=cursor)
    if facts is None:
        return None
    names = staff_names() if timeline.staff_subjects(facts) else {}
    return PersonPage(facts, diagnosis.diagnose(facts), timeline.entries(facts, names), names)


def staff_names() -> dict[str, timeline.StaffName]:
    """ "staff:<sub>" -> email and role, from the staff list (one Query)."""
    return {
        staff.staff_actor(member).name: timeline.StaffName(
            member.email, ROLE_LABELS.get(member.role, member.role).lower()
        )
        for member in staff.list_staff()
    }
