"""How serious: the share of detention book-ins with a violent conviction.

DHS says arrests target "the worst of the worst". The FOIA arrest records carry no crime class,
but every detention stint carries ICE's class of the person's most serious criminal charge (MSC
Crime Class: `Violent` or `Non-Violent`), and each stay takes it from its first stint, as it takes
the book-in criminality. Book-ins are therefore the measurable proxy for that claim: a violent
conviction is a book-in labelled Convicted Criminal whose most serious charge ICE classes Violent.
"""

from __future__ import annotations

import ibis

from iceledger.metrics.registry import MetricParams, View
from iceledger.metrics.targeting import (
    BOOK_IN_DIMENSIONS,
    CONVICTED,
    COUNTED_AS,
    criminality_mix,
    criminality_need,
    mix_metric,
    period_bounds,
    share_columns,
)
from iceledger.metrics.volume import foia_events
from iceledger.tables import FOIA_RELEASES, FOIA_STAYS

VIOLENT = "VIOLENT"  # MSC Crime Class, compared trimmed and upper-cased
SEVERITY_COUNTS = ("convicted_violent", "convicted_crime_class_unknown")
VIOLENT_SHARES = ("violent_conviction", "violent_among_convicted")


def violent_conviction_mix(backend: ibis.BaseBackend, params: MetricParams) -> ibis.Table:
    """Book-ins over the period by criminality, with violent convictions and both headlines."""
    rows, windows = foia_events(backend, FOIA_STAYS, "stay_book_in", params)
    if "msc_crime_class" not in rows.columns:  # stays derived before they carried a crime class
        rows = rows.mutate(msc_crime_class=ibis.null("string"))
    keys = list(params.by)
    crime_class = rows.msc_crime_class.strip().upper().nullif("")
    convicted = rows.criminality == CONVICTED
    severity = (rows.group_by(keys) if keys else rows).aggregate(
        convicted_violent=ibis.ifelse(convicted & (crime_class == VIOLENT), 1, 0).sum(),
        convicted_crime_class_unknown=ibis.ifelse(convicted & crime_class.isnull(), 1, 0).sum(),
    )
    mix = criminality_mix(rows, keys, "book_ins")
    if keys:
        mix = mix.join(severity, [mix[k].identical_to(severity[k]) for k in keys]).select(
            mix, *(severity[c] for c in SEVERITY_COUNTS)
        )
    else:
        mix = mix.cross_join(severity)
    known = mix.convicted + mix.pending_charges + mix.other_immigration_violator
    # When convicted people were booked in but none has a crime class recorded, the records
    # cannot tell a violent conviction from none: the shares are NULL, not 0.
    measurable = (mix.convicted == 0) | (mix.convicted_crime_class_unknown < mix.convicted)
    shares = {
        **share_columns("violent_conviction", mix.convicted_violent,
                        ibis.ifelse(measurable, known, 0)),
        **share_columns("violent_among_convicted", mix.convicted_violent,
                        ibis.ifelse(measurable, mix.convicted, 0)),
    }
    result = mix.mutate(**shares, **period_bounds(windows, params)).relocate(
        "period_start", "period_end"
    ).relocate(*SEVERITY_COUNTS, *shares, before="no_conviction_share")
    return result.order_by(keys) if keys else result


mix_metric(
    name="book_in_violent_conviction_period",
    title="Violent convictions among book-ins over a period",
    definition="Detention book-ins (FOIA stays, counted once per continuous custody) over the "
    "whole period "
    "asked for (--from/--to; the data's span by default), by book-in criminality: counts of "
    "convicted, pending charges, neither and unknown; convicted_violent, the convicted book-ins "
    "whose most serious criminal charge ICE classes Violent (MSC Crime Class of the stay's first "
    "stint), and convicted_crime_class_unknown, the convicted with no crime class recorded. "
    "violent_conviction_share is convicted_violent over the book-ins with a recorded "
    "criminality; violent_among_convicted_share is convicted_violent over the convicted. "
    "period_start and period_end give the days the data actually cover.",
    build=violent_conviction_mix,
    tables=(FOIA_STAYS, FOIA_RELEASES),
    total="book_ins",
    dimensions=BOOK_IN_DIMENSIONS,
    filters=("aor", "citizenship_country"),
    needs=(criminality_need(FOIA_STAYS), *COUNTED_AS[FOIA_STAYS]),
    view=View("violent_conviction_share", "share of book-ins", "dots",
              also=("no_conviction_share", "no_conviction_no_charge_share")),
    caveats=(
        ("This measures book-ins, not arrests: the FOIA arrest records carry no crime class, so "
         "the people ICE detains stand in for the people it arrests; people arrested and not "
         "detained are not counted."),
        ("The crime class is ICE's own label of the person's most serious criminal charge (MSC "
         "Crime Class: Violent or Non-Violent), not a reading of the offence; for a convicted "
         "person that charge may itself be a pending one."),
        ("Convicted book-ins with no crime class recorded count as not violent: each violent "
         "share is a lower bound, low by at most convicted_crime_class_unknown over its "
         "denominator. Where convicted people were booked in but none has a crime class (a "
         "release whose layout lacks the column), the violent shares are empty, not 0."),
    ),
)
