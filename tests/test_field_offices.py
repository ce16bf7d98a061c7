from hypothesis import given, strategies as st

from iceledger.field_offices import field_offices, normalise_aor


def test_twenty_five_offices_with_unique_codes():
    offices = field_offices()
    assert len(offices) == 25
    assert len({o.code for o in offices}) == 25


def test_raw_spellings_resolve_to_one_office():
    assert normalise_aor("St. Paul Area of Responsibility").code == "SPM"
    assert normalise_aor("  new york city  area of responsibility").name == "New York City"
    assert normalise_aor("NOL").name == "New Orleans"
    assert normalise_aor("Headquarters") is None
    assert normalise_aor(None) is None


@given(st.sampled_from(field_offices()), st.sampled_from(["upper", "lower", "title"]))
def test_case_and_spacing_do_not_matter(office, case):
    raw = getattr(f" {office.name}   Area of Responsibility ", case)()
    assert normalise_aor(raw) == office
