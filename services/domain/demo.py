"""Demo data: one real ICB's organisations with plausible workforce returns.

NHS trusts and their staff come from NHS Digital's HCHS workforce statistics (FTE by trust and
staff group, June 2018), split into catalogue roles by fixed shares. Care providers are
synthetic, sized so that the ICB's adult social care posts per person aged 65+ match the
national ratio (Skills for Care: 1,705,000 filled posts in 2023/24; ONS: 11.2 million people
aged 65+ in England in 2024). Councils and primary care networks get the roles they employ.
Rates (vacancy, turnover, sickness, agency) follow the published sector figures in
`sector_figures.csv`. Every generated line passes the return rules. A fixed seed makes the
data the same on every machine.

Characteristics and pay are synthetic: ethnicity, disability and sex are drawn from sector
mixes set here (not published figures for these organisations), NHS roles get an Agenda for
Change band mix around the catalogue's band, and median hourly pay is set per role near
2024/25 Agenda for Change rates and typical care pay, so that the equality, pay-parity and
data-gaps views show something on a first run.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from services.domain.returns import importer as returns_import
from shared.db.base import utcnow
from shared.models import Organisation
from shared.reference.files import bundled_path
from shared.repositories import audit, organisations, population
from shared.vocab.characteristics import AFC_BAND_COLUMNS, AFC_BANDS
from shared.vocab.return_lines import BULK_COLUMNS

DEMO_ICB = "E54000008"  # NHS Cheshire and Merseyside


def demo_dates(today: date) -> tuple[date, date]:
    """The last two financial year ends (31 March) on or before today: the returns read as
    current, so completeness and the latest projection make sense on the day they load."""
    year = today.year if (today.month, today.day) >= (3, 31) else today.year - 1
    return date(year - 1, 3, 31), date(year, 3, 31)


NATIONAL_ASC_POSTS_PER_65_PLUS = 1_705_000 / 11_241_833
AVERAGE_CARE_PROVIDER_POSTS = 70
SEED = 2025

# Trusts of Cheshire and Merseyside in the 2018 file, with the LAD of their main site.
TRUST_HOME_LAD: dict[str, str] = {
    "RBT": "E06000049",  # Mid Cheshire Hospitals (Crewe)
    "RJN": "E06000049",  # East Cheshire (Macclesfield)
    "RJR": "E06000050",  # Countess of Chester
    "RXA": "E06000050",  # Cheshire and Wirral Partnership
    "RWW": "E06000007",  # Warrington and Halton Hospitals
    "REM": "E08000012",  # Aintree University Hospital
    "RQ6": "E08000012",  # Royal Liverpool and Broadgreen
    "RET": "E08000012",  # Walton Centre
    "RBQ": "E08000012",  # Liverpool Heart and Chest
    "REP": "E08000012",  # Liverpool Women's
    "RBS": "E08000012",  # Alder Hey Children's
    "RW4": "E08000012",  # Mersey Care
    "RBN": "E08000011",  # St Helens and Knowsley (Whiston)
    "RVY": "E08000014",  # Southport and Ormskirk
    "RBL": "E08000015",  # Wirral University Teaching Hospital
    "REN": "E08000015",  # Clatterbridge Cancer Centre
    "RY7": "E08000015",  # Wirral Community
}

# How each NHS staff group's FTE is shared among catalogue roles (an assumption for the demo).
STAFF_GROUP_ROLES: dict[str, dict[str, float]] = {
    "HCHS doctors": {"consultant-doctor": 0.40, "specialty-doctor": 0.15, "resident-doctor": 0.45},
    "Nurses & health visitors": {
        "nurse-adult": 0.68, "nurse-children": 0.08, "district-nurse": 0.07,
        "nurse-mental-health": 0.12, "advanced-clinical-practitioner": 0.05,
    },
    "Midwives": {"midwife": 1.0},
    "Support to doctors, nurses & midwives": {
        "healthcare-support-worker": 0.72, "nursing-associate": 0.06, "medical-secretary": 0.22,
    },
    "Scientific, therapeutic & technical staff": {
        "physiotherapist": 0.18, "occupational-therapist": 0.14, "diagnostic-radiographer": 0.14,
        "biomedical-scientist": 0.16, "hospital-pharmacist": 0.16, "clinical-psychologist": 0.10,
        "speech-and-language-therapist": 0.12,
    },
    "Ambulance staff": {"paramedic": 0.6, "ambulance-technician": 0.4},
    "Support to ambulance staff": {"emergency-call-handler": 0.6, "ambulance-support-worker": 0.4},
    "Support to ST&T staff": {"therapy-support-worker": 1.0},
    "Central functions": {"corporate-services-officer": 1.0},
    "Hotel, property & estates": {"estates-and-facilities-worker": 1.0},
    "Managers": {"nhs-manager": 1.0},
    "Senior managers": {"nhs-senior-manager": 1.0},
}  # fmt: skip

# Share of a care provider's posts by role (Skills for Care job role mix, rounded).
CARE_PROVIDER_ROLES: dict[str, float] = {
    "care-worker": 0.66, "senior-care-worker": 0.12, "care-home-nurse": 0.05,
    "activities-worker": 0.03, "care-supervisor": 0.05, "dementia-care-worker": 0.06,
    "registered-manager": 0.03,
}  # fmt: skip
COUNCIL_ROLES: dict[str, int] = {
    "social-worker-adults": 120, "occupational-therapist-social-care": 30,
    "assessment-officer": 40, "reablement-worker": 90, "trusted-assessor": 8,
}  # fmt: skip
PCN_ROLES: dict[str, int] = {
    "general-practitioner": 60, "practice-nurse": 45, "practice-healthcare-assistant": 30,
    "clinical-pharmacist-primary-care": 10, "care-coordinator": 8,
    "social-prescribing-link-worker": 6, "health-and-wellbeing-coach": 4,
    "first-contact-physiotherapist": 4,
}  # fmt: skip

# Sector rates: (vacancy as share of posts, annual turnover, sickness days per head,
# agency share of FTE, bank share of FTE, FTE per head).
NHS_RATES = (0.075, 0.10, 11.0, 0.03, 0.05, 0.87)
ASC_RATES = (0.083, 0.248, 5.0, 0.02, 0.01, 0.78)
# Age mix by band (under 25, 25-34, 35-44, 45-54, 55-64, 65+).
NHS_AGE_MIX = (0.07, 0.26, 0.25, 0.22, 0.17, 0.03)
ASC_AGE_MIX = (0.10, 0.20, 0.21, 0.22, 0.21, 0.06)


# Synthetic characteristic mixes (shares of headcount), in the vocabulary's column order.
ETHNICITY_MIX = {  # asian, black, mixed, white, other, not stated
    "health": (0.11, 0.09, 0.03, 0.72, 0.03, 0.02),
    "social_care": (0.06, 0.10, 0.02, 0.78, 0.02, 0.02),
}
DISABILITY_MIX = {"health": (0.06, 0.84, 0.10), "social_care": (0.04, 0.80, 0.16)}
SEX_MIX = {"health": (0.77, 0.23, 0.0), "social_care": (0.82, 0.18, 0.0)}
# Hourly pay of the Agenda for Change bands (2024/25 entry points over 37.5 hours a week) and
# typical care roles' pay: the demo's medians, each organisation within a few percent.
AFC_HOURLY = {"2": 12.08, "3": 12.31, "4": 13.57, "5": 15.33, "6": 19.10, "7": 23.60}
CARE_HOURLY = {
    "care-worker": 11.45, "senior-care-worker": 12.10, "dementia-care-worker": 11.60,
    "activities-worker": 11.30, "care-supervisor": 12.60, "care-home-nurse": 19.50,
    "registered-manager": 20.50, "reablement-worker": 11.90,
    "occupational-therapist-social-care": 17.80, "social-worker-adults": 20.90,
    "assessment-officer": 15.20, "trusted-assessor": 14.40,
}  # fmt: skip
CHARACTERISTICS_SEED = 2026


def _catalogue_bands() -> dict[str, str]:
    """Each catalogue role's Agenda for Change band ("5"), where the catalogue gives one."""
    roles = json.loads(bundled_path("roles.json").read_text(encoding="utf-8"))["roles"]
    return {
        role["code"]: role["pay_band"].removeprefix("Band ").strip()
        for role in roles
        if (role.get("pay_band") or "").startswith("Band ")
    }


def _characteristics(
    role: str, sector: str, headcount: int, band: str | None, rng: np.random.Generator
) -> list[str]:
    """Median pay, then the ethnicity, disability, sex and Agenda for Change breakdowns."""
    mix_sector = "health" if sector == "health" else "social_care"
    pay = AFC_HOURLY.get(band or "") if sector == "health" else CARE_HOURLY.get(role)
    median = f"{pay * rng.uniform(0.97, 1.04):.2f}" if pay is not None else ""
    out = [median]
    for mixes in (ETHNICITY_MIX, DISABILITY_MIX, SEX_MIX):
        out += map(str, rng.multinomial(headcount, mixes[mix_sector]).tolist())
    bands = [""] * len(AFC_BAND_COLUMNS)
    if sector == "health" and band in AFC_BANDS:
        at = AFC_BANDS.index(band)
        shares = np.zeros(len(AFC_BANDS))
        shares[at] = 0.85
        shares[min(at + 1, len(AFC_BANDS) - 1)] += 0.10
        shares[max(at - 1, 0)] += 0.05
        bands = list(map(str, rng.multinomial(headcount, shares).tolist()))
    return out + bands


@dataclass(frozen=True)
class DemoOrganisation:
    name: str
    kind: str
    sector: str
    home_lad_code: str
    ods_code: str | None
    cqc_location_id: str | None
    posts_by_role: dict[str, float]
    rates: tuple[float, float, float, float, float, float]
    age_mix: tuple[float, ...]


@dataclass(frozen=True)
class DemoReport:
    created: bool
    organisations: int
    lines: int
    returns: int


def _nhs_trusts() -> list[DemoOrganisation]:
    fte: dict[str, dict[str, float]] = {}
    names: dict[str, str] = {}
    with gzip.open(bundled_path("nhs_hchs_fte_by_org_staffgroup_2017_2018.csv.gz"), "rt") as f:
        for row in csv.DictReader(f):
            code = row["org_code"]
            if row["period"] != "2018-JUN" or code not in TRUST_HOME_LAD:
                continue
            names[code] = row["org_name"]
            by_group = fte.setdefault(code, {})
            staff_group = row["staff_group"]
            by_group[staff_group] = by_group.get(staff_group, 0.0) + float(row["fte"])
    trusts = []
    for code in sorted(fte):
        posts: dict[str, float] = {}
        for staff_group, group_fte in fte[code].items():
            for role, share in STAFF_GROUP_ROLES.get(staff_group, {}).items():
                posts[role] = posts.get(role, 0.0) + group_fte * share / NHS_RATES[5]
        trusts.append(
            DemoOrganisation(
                name=names[code],
                kind="nhs_trust",
                sector="health",
                home_lad_code=TRUST_HOME_LAD[code],
                ods_code=code,
                cqc_location_id=None,
                posts_by_role=posts,
                rates=NHS_RATES,
                age_mix=NHS_AGE_MIX,
            )
        )
    return trusts


def _local_organisations(
    lads: list[tuple[str, str, int]], rng: np.random.Generator, *, unique_codes: bool = False
) -> list[DemoOrganisation]:
    """Care providers, a council and primary care per LAD. `unique_codes` builds each
    organisation's code from its LAD's whole code, so codes stay unique across ICBs."""
    organisations: list[DemoOrganisation] = []
    provider_number = 0
    for lad_code, lad_name, persons_65_plus in lads:
        local = lad_code[1:] if unique_codes else lad_code[-4:]
        first_provider = provider_number
        posts = persons_65_plus * NATIONAL_ASC_POSTS_PER_65_PLUS * 0.85
        providers = max(1, round(posts / AVERAGE_CARE_PROVIDER_POSTS))
        sizes = rng.lognormal(mean=0.0, sigma=0.6, size=providers)
        sizes = sizes / sizes.sum() * posts
        for size in sizes:
            provider_number += 1
            organisations.append(
                DemoOrganisation(
                    name=f"{lad_name} Care Services {provider_number:03d} (demo)",
                    kind="care_provider",
                    sector="social_care",
                    home_lad_code=lad_code,
                    ods_code=None,
                    cqc_location_id=(
                        f"1-9{local}{provider_number - first_provider:03d}"
                        if unique_codes
                        else f"1-9{provider_number:09d}"
                    ),
                    posts_by_role={r: float(size) * s for r, s in CARE_PROVIDER_ROLES.items()},
                    rates=ASC_RATES,
                    age_mix=ASC_AGE_MIX,
                )
            )
        scale = persons_65_plus / 60_000
        organisations.append(
            DemoOrganisation(
                name=f"{lad_name} Council adult social care (demo)",
                kind="local_authority",
                sector="local_government",
                home_lad_code=lad_code,
                ods_code=f"LA{local}",
                cqc_location_id=None,
                posts_by_role={r: n * scale for r, n in COUNCIL_ROLES.items()},
                rates=ASC_RATES,
                age_mix=ASC_AGE_MIX,
            )
        )
        organisations.append(
            DemoOrganisation(
                name=f"{lad_name} Primary Care Networks (demo)",
                kind="primary_care",
                sector="health",
                home_lad_code=lad_code,
                ods_code=f"PC{local}",
                cqc_location_id=None,
                posts_by_role={r: n * scale for r, n in PCN_ROLES.items()},
                rates=NHS_RATES,
                age_mix=NHS_AGE_MIX,
            )
        )
    return organisations


def _line(
    posts: float,
    rates: tuple[float, ...],
    age_mix: tuple[float, ...],
    growth: float,
    rng: np.random.Generator,
) -> list[str] | None:
    vacancy, turnover, sickness_days, agency, bank, fte_per_head = rates
    filled_posts = posts * growth * (1 - vacancy * rng.uniform(0.6, 1.4))
    headcount = max(1, round(filled_posts))
    fte = round(min(headcount * fte_per_head * rng.uniform(0.95, 1.05), headcount * 1.15), 1)
    vacant = round(min(posts * growth * vacancy * rng.uniform(0.6, 1.4), fte), 1)
    leavers = min(round(headcount * turnover * rng.uniform(0.7, 1.3)), headcount)
    starters = max(0, round(leavers * rng.uniform(0.85, 1.25)))
    leavers_to_care = round(leavers * 0.3)
    sickness = round(headcount * sickness_days * rng.uniform(0.7, 1.3), 1)
    ages = np.floor(np.asarray(age_mix) * headcount).astype(int)
    ages[int(np.argmax(age_mix))] += headcount - int(ages.sum())
    return [
        str(headcount), f"{fte}", f"{vacant}", str(starters), str(leavers),
        str(leavers_to_care), f"{sickness}", f"{round(fte * agency, 1)}",
        f"{round(fte * bank, 1)}", *map(str, ages.tolist()), "",
    ]  # fmt: skip


async def _lads_with_65_plus(session: AsyncSession, *, ics_code: str) -> list[tuple[str, str, int]]:
    dataset = await population.get_dataset_by_name(session, name="ons-snpp-2018")
    if dataset is None:
        raise RuntimeError("load the reference data first: oneworkforce load-reference")
    return await population.persons_by_lad(
        session,
        dataset_id=dataset.id,
        ics_code=ics_code,
        year=2024,
        age_bands=["65-69", "70-74", "75-79", "80-84", "85-89", "90+"],
    )


async def load_demo(
    session: AsyncSession, *, ics_code: str = DEMO_ICB, trusts: bool = True
) -> DemoReport:
    """Register the demo ICB's organisations and load two years of returns (once).

    `trusts=False` leaves out the NHS trusts (Cheshire and Merseyside's, by their real ODS
    codes), so any ICB can be given sized local organisations the same way (benchmarks)."""
    existing = await organisations.count_in_ics(session, ics_code=ics_code)
    if existing:
        return DemoReport(created=False, organisations=existing, lines=0, returns=0)
    rng = np.random.default_rng(SEED)
    lads = await _lads_with_65_plus(session, ics_code=ics_code)
    demo = (_nhs_trusts() if trusts else []) + _local_organisations(
        lads, rng, unique_codes=not trusts
    )
    for organisation in demo:
        session.add(
            Organisation(
                name=organisation.name,
                kind=organisation.kind,
                sector=organisation.sector,
                ods_code=organisation.ods_code,
                cqc_location_id=organisation.cqc_location_id,
                home_lad_code=organisation.home_lad_code,
                ics_code=ics_code,
                opened_on=date(2000, 4, 1),
            )
        )
    await session.flush()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(BULK_COLUMNS)
    lines = 0
    bands = _catalogue_bands()
    # A second generator, so the characteristics leave the core figures as they were.
    traits = np.random.default_rng(CHARACTERISTICS_SEED)
    for as_at, growth in zip(demo_dates(utcnow().date()), (0.97, 1.0), strict=True):
        for organisation in demo:
            code = organisation.ods_code or organisation.cqc_location_id
            for role, posts in sorted(organisation.posts_by_role.items()):
                if posts < 0.5:
                    continue
                values = _line(posts, organisation.rates, organisation.age_mix, growth, rng)
                if values is not None:
                    extra = _characteristics(
                        role, organisation.sector, int(values[0]), bands.get(role), traits
                    )
                    writer.writerow([code, as_at.isoformat(), role, *values, *extra])
                    lines += 1
    payload = buffer.getvalue().encode()

    async def chunks() -> AsyncIterator[bytes]:
        yield payload

    import_id = uuid.uuid4()
    await returns_import.stage(session, chunks(), import_id=import_id)
    outcome = await returns_import.validate_and_load(
        session, import_id=import_id, ics_code=ics_code, key_id=None, actor="demo"
    )
    if not outcome.ok:
        raise RuntimeError(f"demo returns failed validation: {outcome.problems[:3]}")
    await audit.record(
        session,
        key_id=None,
        actor="demo",
        action="demo.load",
        resource_type="area",
        resource_id=ics_code,
        detail={"organisations": len(demo), "lines": lines},
    )
    return DemoReport(
        created=True, organisations=len(demo), lines=lines, returns=outcome.return_count
    )
