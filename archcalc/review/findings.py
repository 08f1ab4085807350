"""Design-review findings: rules that reason from the exact figures of one analysis.

The API the report command and its renderers rely on (keep it stable):

    review(analysis, ignore=()) -> list[Finding]
        Runs every rule of RULES whose id is not in `ignore` (an OptionError names any id that is
        no rule), and sorts the findings by severity (error, warning, info), then by where their
        first layer runs in the network; findings about no layer in particular come last.
    unknown_rules(names) -> list[str]
        The names that are not rule ids, in the order given: validates `--ignore`.
    RULES: dict[str, Rule]
        Rule id (kebab-case) -> Rule(id, title, source, check, severities), in the order reports
        list them; `check(analysis) -> list[Finding]` is a pure function.
    Finding(rule, severity, layers, message, figure, source), frozen:
        rule      the rule's id;
        severity  "info", "warning" or "error";
        layers    the layer paths concerned, in network order (may be empty);
        message   what is wrong and what to do, with the figures that show it;
        figure    the number that triggered it, short (`4.15x`, `89.36% of params`);
        source    where a reader can look the rule up: papers (authors, title, venue, year,
                  arXiv id or DOI), PyTorch documentation (page, section) or a docs/ page.
    live_at_peak(analysis) -> dict[str, int]
        Per-example bytes of each storage alive at the inference peak, by the layer that made it.

Each rule is one module of archcalc/review/rules/, whose docstring states it and whose constants
are its thresholds; rules/base.py holds the contract they share. Rules need numbers: on a symbolic
analysis a rule reports only where its figures are integers.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from archcalc.analysis import Analysis
from archcalc.errors import OptionError
from archcalc.review.rules import RULES, Finding, Rule, Severity
from archcalc.review.rules.memory_hotspot import live_at_peak

SEVERITY_ORDER: dict[str, int] = {"error": 0, "warning": 1, "info": 2}


def unknown_rules(names: Iterable[str]) -> list[str]:
    """The names that are not rule ids, in the order given (for validating `--ignore`)."""
    return [n for n in names if n not in RULES]


def review(analysis: Analysis, ignore: Collection[str] = ()) -> list[Finding]:
    """Every finding of the rules not ignored: by severity, then by network order."""
    unknown = unknown_rules(ignore)
    if unknown:
        raise OptionError(
            f"unknown review rule(s) {', '.join(unknown)}; the rules are: {', '.join(RULES)}"
        )
    findings = [f for rule in RULES.values() if rule.id not in ignore for f in rule.check(analysis)]
    position = {p: i for i, p in enumerate(analysis.network.order)}
    end = len(position)
    return sorted(
        findings,
        key=lambda f: (
            SEVERITY_ORDER[f.severity],
            position.get(f.layers[0], end) if f.layers else end,
        ),
    )


__all__ = ["RULES", "Finding", "Rule", "Severity", "live_at_peak", "review", "unknown_rules"]
