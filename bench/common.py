"""What every bench section shares: a figure, a percentile, fresh tables, an AWS call counter.

Its own module so the sections (bench/run.py's and bench/campaign.py, bench/console_search.py)
import it and bench/run.py imports the sections: no import circle.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Figure:
    name: str
    value: float
    target: str
    ok: bool
    detail: str = ""


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def fresh_tables(prefix: str) -> None:
    from chalicelib import models

    models.use_table_prefix(prefix)
    for model in models.ALL_MODELS:
        if not model.exists():
            model.create_table(billing_mode="PAY_PER_REQUEST", wait=True)


def call_counter():
    """Every AWS call from this process (localdev.aws_calls, the tests' helper too)."""
    from localdev.aws_calls import AwsCalls

    return AwsCalls().install()
