"""Track record (backtesting) of the baseline projection against later returns."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TrackRecordComparison(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    base_year: int = Field(description="The year projected from")
    year: int = Field(description="The later year whose returns are compared")
    level: str = Field(description="role, sector or all")
    group: str = Field(description="Role code, sector, or 'all'")
    measure: str = Field(description="fte_in_post or vacant_fte")
    projected: float = Field(description="Principal projection (FTE)")
    p10: float
    p90: float
    actual: float = Field(description="Sum of the later returns (FTE)")
    error: float = Field(description="projected - actual (FTE); positive = projected too high")
    absolute_percentage_error: float | None = Field(
        description="|error| / actual x 100; null when actual is 0"
    )
    inside_p10_p90: bool


class TrackRecordSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    level: str
    group: str
    measure: str
    comparisons: int
    mape: float | None = Field(description="Mean absolute percentage error (percent)")
    mean_signed_error: float = Field(description="Bias in FTE; positive = projections too high")
    mean_signed_percentage_error: float | None = Field(description="Bias in percent of actual")
    coverage_p10_p90: float = Field(
        description="Share of comparisons whose actual fell within p10-p90 (about 0.8 expected)"
    )


class TrackRecordRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    area_code: str
    roles: list[str] | None
    iterations: int
    seed: int
    return_years: list[int] = Field(description="Years with returns used as base and target")
    expected_coverage: float
    coverage_by_measure: dict[str, float] = Field(
        description="Share of role-level comparisons inside p10-p90, by measure"
    )
    summaries: list[TrackRecordSummary]
    comparisons: list[TrackRecordComparison]
