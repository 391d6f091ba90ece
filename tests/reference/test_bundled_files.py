"""The reference files shipped in the package, and their licence attribution."""

from __future__ import annotations

import gzip
from importlib import resources

from shared.reference import files

ATTRIBUTION = (
    "Contains public sector information licensed under the Open Government Licence v3.0.\n"
    "Source: Office for National Statistics / NHS Digital."
)
SHIPPED = {
    files.POPULATION_FILE,
    files.POPULATION_SUMMARY_FILE,
    files.LAD_ICB_LOOKUP_FILE,
    files.DEMENTIA_PREVALENCE_FILE,
    files.NHS_HCHS_STAFF_FILE,
    files.SECTOR_FIGURES_FILE,
    files.CENSUS_ETHNIC_GROUP_FILE,
    files.CENSUS_UNPAID_CARE_FILE,
    files.CENSUS_DISABILITY_FILE,
}


def test_every_shipped_file_is_attributed_and_nothing_else_is_shipped() -> None:
    folder = resources.files(files.REFERENCE_PACKAGE)
    sources = folder.joinpath("SOURCES.md").read_text(encoding="utf-8")
    assert ATTRIBUTION in sources
    csv_files = {entry.name for entry in folder.iterdir() if entry.name.endswith(".csv.gz")}
    assert csv_files == SHIPPED
    for name in SHIPPED:
        assert f"`{name}`" in sources


def test_the_population_file_has_the_rows_the_loader_expects() -> None:
    with gzip.open(files.bundled_path(files.POPULATION_FILE), "rt", encoding="utf-8") as text:
        header = text.readline().strip()
        rows = sum(1 for _ in text)
    assert header == "area_code,year,sex,age_band,population"
    assert rows == files.BUNDLED_POPULATION_ROWS


def test_the_demo_files_read_as_csv() -> None:
    staff = files.read_bundled_rows(files.NHS_HCHS_STAFF_FILE)
    assert len(staff) == 7_272
    june_2018 = sum(float(row["fte"]) for row in staff if row["period"] == "2018-JUN")
    assert round(june_2018) == 1_061_617
    assert len(files.read_bundled_rows(files.SECTOR_FIGURES_FILE)) == 27
