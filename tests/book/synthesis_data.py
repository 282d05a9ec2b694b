"""Registry-like rows shared by the tests of the flow, feasibility and summary modules."""

from __future__ import annotations

import pandas as pd

STUDIES = pd.DataFrame({"study_id": ["a2012", "b2019", "c2018"],
                        "label": ["A 2012", "B 2019", "C 2018"], "year": [2012, 2019, 2018]})


def outcome(study: str, name: str, events: int, total: int, arm: str = "all",
            role: str = "", subgroup: str = "") -> dict:
    return {"study_id": study, "arm": arm, "arm_role": role, "outcome": name,
            "subgroup": subgroup, "events": events, "total": total}


