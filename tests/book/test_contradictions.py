"""Tests for evidence.book.contradictions: the two readings of a self-contradiction.

Reference values: see ``chapter_data.py`` (R 4.2.2, metafor 3.8-1, and hand-worked tables).
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from chapter_data import shi_rows

from evidence.book import contradictions


def test_contradictions_check_each_reading() -> None:
    prim = shi_rows()
    alt = pd.concat([shi_rows(zero_to_low=20).iloc[[0]], shi_rows(total=254).iloc[[-1]]],
                    ignore_index=True).assign(note=["zero to low note", "254 note"])
    out_prim = pd.DataFrame({"study_id": ["shi2023"], "arm": ["all"],
                             "outcome": ["tissue_conversion_to_low"],
                             "subgroup": ["primary_her2=zero"], "events": [25],
                             "total": [51], "note": ["outcome note"]})
    out_alt = out_prim.assign(events=[20])
    contra = contradictions.contradictions({"transitions": alt, "outcomes": out_alt},
                                     {"transitions": prim, "outcomes": out_prim},
                                     discordant=94)
    assert contra["used"].tolist() == ["25", "247", "25 / 51"]
    assert contra["alternative"].tolist() == ["20", "254", "20 / 51"]
    assert contra["tables_used"].tolist()[:2] == [9.0, 9.0]
    assert contra["tables_alternative"].tolist()[:2] == [0.0, 0.0]
    assert math.isnan(contra["tables_used"].iloc[2])
    assert contra["note"].tolist() == ["zero to low note", "254 note", "outcome note"]
    text = contradictions.describe_contradictions(contra)
    assert "**25** is used; 20 is the alternative" in text
    assert "no transition table of counts can match" in text
    assert contradictions.contradictions_table(contra).shape == (3, 4)
    assert "does not contradict itself" in contradictions.describe_contradictions(contra.iloc[0:0])
    with pytest.raises(ValueError, match="has no primary row"):
        contradictions.contradictions({"transitions": alt}, {"transitions": prim.iloc[1:]})
    with pytest.raises(ValueError, match="unknown table 'effects'"):
        contradictions.contradictions({"effects": alt}, {})


# ------------------------------------------------------------------------ two-arm


