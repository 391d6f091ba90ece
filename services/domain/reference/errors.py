"""Errors of loading reference data (population datasets)."""

from __future__ import annotations

from shared.errors import Conflict, Unprocessable


class BadDatasetName(Unprocessable):
    """A dataset name is 1-100 lower-case letters, digits, '.', '_' or '-'."""

    code = "bad_dataset_name"
    fix = "Choose a short slug such as ons-snpp-2022."


class DatasetNameReserved(Conflict):
    """The name belongs to the bundled ONS dataset."""

    code = "dataset_name_reserved"
    fix = "Choose another name; `oneworkforce load-reference` manages the bundled dataset."


class DatasetExists(Conflict):
    """A population dataset with this name already exists."""

    code = "dataset_exists"
    fix = "Pass --replace to replace it, or choose another name."


class BadBaseYear(Unprocessable):
    """The base year is outside the years the service handles."""

    code = "bad_base_year"
    fix = "Give the projection's base year."


class SourceRequired(Unprocessable):
    """A dataset needs a source."""

    code = "source_required"
    fix = "Say where the figures come from (--source)."


class ReferenceDataMissing(Conflict):
    """No areas are loaded yet."""

    code = "reference_data_missing"
    fix = "Run `oneworkforce load-reference` first."


class InvalidPopulationFile(Unprocessable):
    """The population file has problems; `errors[]` lists them; nothing was loaded."""

    code = "invalid_population_file"
    fix = "Correct the listed rows and load the file again."
