"""Need indicators: numbers of people with a need, as POPPI and PANSI publish them.

An indicator is a prevalence rate by sex and five-year age band (with its interval where the
source gives one) applied to an area's projected population: persons(y, sex, band) =
population(y, sex, band) x rate(sex, band). The interval is the same population times the
rate's lower and upper limits; a total's limits are the sums of its bands' limits, that is
every band at its limit together (the bands' errors are not independent, and this is the
cautious reading). Rates are held in `prevalence_rates` under the indicator's measure.

Adding an indicator is adding its rates file (with source and licence in SOURCES.md), a
loader entry and a line in INDICATORS, plus a test against a figure its source publishes.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.reference import files


@dataclass(frozen=True)
class Indicator:
    name: str
    title: str
    measure: str  # prevalence_rates.measure
    population: str  # who is counted
    interval: str | None  # what the lower/upper limits are, None when the source gives none
    source: str
    licence: str


INDICATORS: dict[str, Indicator] = {
    "dementia_65_plus": Indicator(
        name="dementia_65_plus",
        title="People aged 65 and over with dementia",
        measure=files.DEMENTIA_MEASURE,
        population="persons aged 65 and over, including those living in care homes",
        interval="95% confidence interval of the age- and sex-specific prevalence",
        source="Cognitive Function and Ageing Study II (CFAS II) reference rates: Matthews FE "
        "et al., Lancet 2013;382:1405-12, applied to ONS 2018-based subnational population "
        "projections",
        licence="Rates: published research, quoted for non-commercial planning use; population: "
        "Open Government Licence v3.0 (Office for National Statistics)",
    ),
}


def known_indicators() -> list[str]:
    return sorted(INDICATORS)
