"""What each page shows, as tables and charts built from the services' answers. The page,
its CSV/xlsx downloads and its SVG/PNG downloads all come from these same builders."""

from __future__ import annotations

from services.api.charts import draw
from services.api.explorer.exports import Table
from services.api.explorer.overview import Overview, sector_label

POPULATION_SOURCE = "ONS 2018-based subnational population projections (OGL v3.0)"


def _rate(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 1)


def workforce_roles_table(data: Overview) -> Table:
    return Table(
        name="workforce-roles",
        title=f"Workforce by role: {data.area.name}, latest returns at {data.workforce.as_at}",
        header=[
            "role_code",
            "role",
            "sector",
            "organisations",
            "headcount",
            "fte_in_post",
            "vacant_fte",
            "vacancy_rate_pct",
            "turnover_rate_pct",
            "sickness_rate_pct",
            "agency_share_pct",
        ],
        rows=[
            [
                line.code,
                line.name,
                sector_label(line.sector),
                line.figures.organisations,
                line.figures.headcount,
                round(line.figures.fte_in_post, 1),
                round(line.figures.vacant_fte, 1),
                _rate(line.figures.vacancy_rate),
                _rate(line.figures.turnover_rate),
                _rate(line.figures.sickness_rate),
                _rate(line.figures.agency_share),
            ]
            for line in data.roles
        ],
    )


def workforce_sectors_table(data: Overview) -> Table:
    return Table(
        name="workforce-sectors",
        title=f"Workforce by sector: {data.area.name}, latest returns at {data.workforce.as_at}",
        header=["sector", "roles", "headcount", "fte_in_post", "vacant_fte", "vacancy_rate_pct"],
        rows=[
            [
                s.label,
                s.roles,
                s.headcount,
                round(s.fte_in_post, 1),
                round(s.vacant_fte, 1),
                _rate(s.vacancy_rate),
            ]
            for s in data.sectors
        ],
    )


def not_reporting_table(data: Overview) -> Table:
    return Table(
        name="data-gaps",
        title=f"Organisations without a return in the 12 months to {data.workforce.as_at}: "
        f"{data.area.name}",
        header=["organisation", "kind", "sector", "ods_code", "latest_return"],
        rows=[
            [
                g.organisation.name,
                str(g.organisation.kind),
                str(g.organisation.sector),
                g.organisation.ods_code,
                g.last_as_at.isoformat() if g.last_as_at else None,
            ]
            for g in data.not_reporting
        ],
        notes=(
            f"{data.not_reporting_total} organisation(s) in all"
            + (
                f"; the first {len(data.not_reporting)} shown"
                if data.not_reporting_total > len(data.not_reporting)
                else ""
            ),
        ),
    )


def population_table(data: Overview) -> Table:
    return Table(
        name="population",
        title=f"Population and need: {data.area.name} ({data.dataset})",
        header=["year", "persons", "aged_65_plus", "aged_85_plus", "dementia_65_plus_estimate"],
        rows=[
            [y.year, y.persons, y.aged_65_plus, y.aged_85_plus, y.dementia_65_plus]
            for y in data.trend
        ],
        notes=(
            "Dementia: age- and sex-specific prevalence x population"
            + (f" ({data.prevalence_source})" if data.prevalence_source else ""),
            f"Source: {POPULATION_SOURCE}",
        ),
    )


def population_chart(data: Overview, fmt: draw.ImageFormat, *, narrow: bool = False) -> bytes:
    years = [y.year for y in data.trend]
    panels = [
        draw.Panel(
            title="All ages, persons",
            series=[
                draw.Series(
                    "persons", "All ages", years, [y.persons for y in data.trend], colour="#0072B2"
                )
            ],
            y_label="Persons",
        ),
        draw.Panel(
            title="Older people and dementia, persons",
            series=[
                draw.Series(
                    "aged_65_plus",
                    "Aged 65+",
                    years,
                    [y.aged_65_plus for y in data.trend],
                    colour="#B84A00",
                ),
                draw.Series(
                    "aged_85_plus",
                    "Aged 85+",
                    years,
                    [y.aged_85_plus for y in data.trend],
                    colour="#8E3A80",
                ),
                *(
                    [
                        draw.Series(
                            "dementia_65_plus",
                            "With dementia, 65+ (estimate)",
                            years,
                            [y.dementia_65_plus or 0 for y in data.trend],
                            colour="#007A5E",
                        )
                    ]
                    if data.prevalence_source
                    else []
                ),
            ],
            y_label="Persons",
        ),
    ]
    text = draw.ChartText(
        title=f"Population trend: {data.area.name} ({data.area.code})",
        subtitle=f"Projected persons by year, dataset {data.dataset}",
        source=POPULATION_SOURCE
        + ("; dementia prevalence CFAS II" if data.prevalence_source else ""),
    )
    return draw.line_chart(panels, text, fmt, narrow=narrow)
