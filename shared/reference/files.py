"""The reference files shipped inside the package (shared/reference_data/, gzipped CSV)."""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import IO

REFERENCE_PACKAGE = "shared.reference_data"

POPULATION_FILE = "ons_snpp2018_principal_5yr_long.csv.gz"
POPULATION_SUMMARY_FILE = "ons_snpp2018_principal_summary.csv.gz"
LAD_ICB_LOOKUP_FILE = "lookup_lad24_icb24_bestfit.csv.gz"
DEMENTIA_PREVALENCE_FILE = "prevalence_dementia_cfas2_by_age_sex.csv.gz"
# Shipped for the demo data; nothing here reads them.
NHS_HCHS_STAFF_FILE = "nhs_hchs_fte_by_org_staffgroup_2017_2018.csv.gz"
SECTOR_FIGURES_FILE = "sector_figures.csv.gz"
# Census 2021, read in memory by the equality and unpaid-care views.
CENSUS_ETHNIC_GROUP_FILE = "census2021_ethnic_group_by_lad.csv.gz"
CENSUS_UNPAID_CARE_FILE = "census2021_unpaid_care_by_lad.csv.gz"
CENSUS_DISABILITY_FILE = "census2021_disability_by_lad.csv.gz"
ROLE_EQUIVALENCES_FILE = "role_equivalences.json"

BUNDLED_DATASET_NAME = "ons-snpp-2018"
BUNDLED_DATASET_BASE_YEAR = 2018
BUNDLED_DATASET_SOURCE = (
    "ONS 2018-based subnational population projections for England (principal), 5-year age "
    "bands, 2018-2043; ICB figures are sums of whole LADs (best fit). Contains public sector "
    "information licensed under the Open Government Licence v3.0. Source: Office for National "
    "Statistics / NHS Digital."
)
# 360 areas x 26 years x 2 sexes x 19 bands; a test checks the file against it.
BUNDLED_POPULATION_ROWS = 355_680
DEMENTIA_MEASURE = "dementia"


def bundled_path(name: str) -> Path:
    """The path of a bundled reference file."""
    path = Path(str(resources.files(REFERENCE_PACKAGE).joinpath(name)))
    if not path.is_file():
        raise FileNotFoundError(f"bundled reference file missing: {name}")
    return path


@contextmanager
def open_csv_text(path: Path) -> Iterator[tuple[IO[str], IO[bytes]]]:
    """Open a CSV (plain or .gz) as text, with the raw file so callers can report progress."""
    with path.open("rb") as raw:
        stream: IO[bytes] = (
            gzip.GzipFile(fileobj=raw) if path.name.endswith(".gz") else raw  # type: ignore[assignment]
        )
        # utf-8-sig drops the byte order mark spreadsheet programs put in front of the header.
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        try:
            yield text, raw
        finally:
            # Closes the gzip layer too; a GzipFile given a file object leaves that open.
            text.close()


def read_bundled_rows(name: str) -> list[dict[str, str]]:
    """Every row of a small bundled CSV as dicts (the lookups and rates, not the population)."""
    with open_csv_text(bundled_path(name)) as (text, _raw):
        return list(csv.DictReader(text))
