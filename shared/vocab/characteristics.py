"""Workforce characteristics a return line may break its headcount down by, and pay bands.

Each breakdown is optional; when given, its columns add up to the line's headcount. The codes
are the API's and the CSV template's column suffixes; the labels are the sources' own.
"""

from __future__ import annotations

# The five high-level ethnic groups of Census 2021 (TS021), plus "not stated" for staff who
# did not say; the labels are exactly Census 2021's, so the workforce can be set beside it.
ETHNICITY: dict[str, str] = {
    "asian": "Asian, Asian British or Asian Welsh",
    "black": "Black, Black British, Black Welsh, Caribbean or African",
    "mixed": "Mixed or Multiple ethnic groups",
    "white": "White",
    "other": "Other ethnic group",
    "not_stated": "Not stated",
}
DISABILITY: dict[str, str] = {
    "yes": "Disabled",
    "no": "Not disabled",
    "not_stated": "Not stated",
}
SEX: dict[str, str] = {"female": "Female", "male": "Male", "not_stated": "Not stated"}
# Agenda for Change pay bands (NHS roles only): headcount on each band, where known.
AFC_BANDS: tuple[str, ...] = (
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
    "8a",
    "8b",
    "8c",
    "8d",
    "9",
)

ETHNICITY_COLUMNS: tuple[str, ...] = tuple(f"ethnicity_{code}" for code in ETHNICITY)
DISABILITY_COLUMNS: tuple[str, ...] = tuple(f"disability_{code}" for code in DISABILITY)
SEX_COLUMNS: tuple[str, ...] = tuple(f"sex_{code}" for code in SEX)
AFC_BAND_COLUMNS: tuple[str, ...] = tuple(f"afc_band_{band}" for band in AFC_BANDS)

# Each breakdown: its name (as reported in problems) and its columns, which add up to headcount.
BREAKDOWNS: dict[str, tuple[str, ...]] = {
    "ethnicity": ETHNICITY_COLUMNS,
    "disability": DISABILITY_COLUMNS,
    "sex": SEX_COLUMNS,
    "afc_band": AFC_BAND_COLUMNS,
}
CHARACTERISTIC_COLUMNS: tuple[str, ...] = (
    *ETHNICITY_COLUMNS,
    *DISABILITY_COLUMNS,
    *SEX_COLUMNS,
    *AFC_BAND_COLUMNS,
)
