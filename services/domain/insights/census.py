"""Census 2021 tables shipped in the package: ethnic group (TS021), disability (TS038) and
unpaid care (TS039) by LAD, read once and kept in memory (7,400, 888 and 2,664 rows)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from functools import cache

from shared.reference.files import (
    CENSUS_DISABILITY_FILE,
    CENSUS_ETHNIC_GROUP_FILE,
    CENSUS_UNPAID_CARE_FILE,
    bundled_path,
    open_csv_text,
)
from shared.vocab.characteristics import ETHNICITY

ETHNIC_GROUP_SOURCE = (
    "ONS Census 2021 TS021 Ethnic group, all usual residents (all ages), by local authority. "
    "Contains public sector information licensed under the Open Government Licence v3.0. "
    "Source: Office for National Statistics."
)
DISABILITY_SOURCE = (
    "ONS Census 2021 TS038 Disability (Equality Act 2010 definition), all usual residents (all "
    "ages), by local authority. Contains public sector information licensed under the Open "
    "Government Licence v3.0. Source: Office for National Statistics."
)
UNPAID_CARE_SOURCE = (
    "ONS Census 2021 TS039 Provision of unpaid care, usual residents aged 5 and over, by local "
    "authority. Contains public sector information licensed under the Open Government Licence "
    "v3.0. Source: Office for National Statistics."
)

# Census labels of the high-level groups; "not stated" has no Census row.
_ETHNIC_LABEL_TO_CODE = {label: code for code, label in ETHNICITY.items() if code != "not_stated"}
ETHNIC_TOTAL = "Total: All usual residents"

# TS038 rows, by the disability codes of return lines ("not stated" has no Census row).
DISABILITY_TOTAL = "Total: All usual residents"
_DISABILITY_LABEL_TO_CODE = {
    "Disabled under the Equality Act": "yes",
    "Not disabled under the Equality Act": "no",
}

# TS039 rows: the total, "none", and the five finest hours bands (the broad ones are sums).
UNPAID_TOTAL = "Total: All usual residents aged 5 and over"
UNPAID_NONE = "Provides no unpaid care"
UNPAID_BANDS: dict[str, str] = {
    "9_or_less": "Provides 9 hours or less unpaid care a week",
    "10_to_19": "Provides 10 to 19 hours unpaid care a week",
    "20_to_34": "Provides 20 to 34 hours unpaid care a week",
    "35_to_49": "Provides 35 to 49 hours unpaid care a week",
    "50_or_more": "Provides 50 or more hours unpaid care a week",
}
_UNPAID_LABEL_TO_CODE = {label: code for code, label in UNPAID_BANDS.items()}


def _read(name: str) -> list[dict[str, str]]:
    with open_csv_text(bundled_path(name)) as (text, _):
        return list(csv.DictReader(text))


def _by_lad(name: str, codes: Mapping[str, str]) -> dict[str, dict[str, int]]:
    """The rows of a category-per-row table whose label is in `codes`, keyed by LAD and code."""
    out: dict[str, dict[str, int]] = {}
    for row in _read(name):
        lad = out.setdefault(row["lad_code"], {})
        code = codes.get(row["category"])
        if code is not None:
            lad[code] = int(row["persons"])
    return out


@cache
def ethnic_group_by_lad() -> Mapping[str, Mapping[str, int]]:
    """Residents by high-level ethnic group code (and `total`) for each LAD."""
    return _by_lad(CENSUS_ETHNIC_GROUP_FILE, {ETHNIC_TOTAL: "total", **_ETHNIC_LABEL_TO_CODE})


@cache
def disability_by_lad() -> Mapping[str, Mapping[str, int]]:
    """Residents (`total`), disabled under the Equality Act (`yes`) and not (`no`) for each
    LAD."""
    return _by_lad(CENSUS_DISABILITY_FILE, {DISABILITY_TOTAL: "total", **_DISABILITY_LABEL_TO_CODE})


@cache
def unpaid_care_by_lad() -> Mapping[str, Mapping[str, int]]:
    """Residents aged 5+ (`total`), those giving no unpaid care (`none`) and carers by hours
    band for each LAD."""
    out: dict[str, dict[str, int]] = {}
    for row in _read(CENSUS_UNPAID_CARE_FILE):
        lad = out.setdefault(row["lad_code"], {})
        label = row["category"]
        if label == UNPAID_TOTAL:
            lad["total"] = int(row["persons"])
        elif label == UNPAID_NONE:
            lad["none"] = int(row["persons"])
        elif label in _UNPAID_LABEL_TO_CODE:
            lad[_UNPAID_LABEL_TO_CODE[label]] = int(row["persons"])
    return out


def sum_over(table: Mapping[str, Mapping[str, int]], lads: Iterable[str]) -> dict[str, int]:
    """Add up the LADs' rows (LADs absent from the table add nothing)."""
    total: dict[str, int] = {}
    for lad in lads:
        for key, value in table.get(lad, {}).items():
            total[key] = total.get(key, 0) + value
    return total
