"""Issue 8 (role x route x object) / DOMAIN "Roles": a content manager sees only their own figures. In the
month overview (`GET /months/{month}`) PAY-7's "why" is cut to what they may see (`why_seen_by`): the best
manager's name and their own figures; the lead, the analyst and integrations get it whole."""

from __future__ import annotations

import json

from payroll.rules import DEFAULT_BEST_MANAGER_RULE, ManagerStats, rank_best_manager
from payroll.services import why_seen_by

STATS = [ManagerStats("anna", renewals=3, lost=1, met=4, breached=1, deals=5),
         ManagerStats("boris", renewals=2, lost=0, met=2, deals=3),
         ManagerStats("carl", renewals=1, lost=2, met=1, breached=3, deals=4)]


def test_issue8_pay7_a_content_manager_sees_the_winners_name_and_only_their_own_figures() -> None:
    winner, why = rank_best_manager(STATS, DEFAULT_BEST_MANAGER_RULE)
    assert winner == "anna" and "boris" in why["reason"] and len(why["ranking"]) == 3   # the lead's view
    seen = why_seen_by(why, "carl")
    assert seen["ranking"] == [s.figures() for s in STATS if s.manager == "carl"]
    assert seen["winner"] == {"manager": "anna"} and seen["code"] == "decided"
    text = json.dumps(seen)
    assert '"anna"' in text and '"boris"' not in text and "vs" not in seen["reason"]
    # The winner sees their own figures as the winner's.
    mine = why_seen_by(why, "anna")
    assert mine["winner"] == STATS[0].figures() and [r["manager"] for r in mine["ranking"]] == ["anna"]
    assert "boris" not in json.dumps(mine)


def test_issue8_pay7_a_tie_shows_the_tied_names_but_no_other_managers_figures() -> None:
    tied = [ManagerStats("anna", renewals=2, met=1), ManagerStats("boris", renewals=2, met=1),
            ManagerStats("carl", renewals=0, lost=1)]
    winner, why = rank_best_manager(tied, DEFAULT_BEST_MANAGER_RULE)
    assert winner is None and why["code"] == "tie_unresolved"
    seen = why_seen_by(why, "carl")
    assert seen["tie"]["managers"] == ["anna", "boris"] and [r["manager"] for r in seen["ranking"]] == ["carl"]
    assert seen["winner"] is None
