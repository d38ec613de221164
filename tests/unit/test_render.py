from hypothesis import given
from hypothesis import strategies as st

from bot.engine.render import USSD_CONTINUE, Limits, paginate
from bot.types import Channel

USSD = Limits(Channel.USSD)
SMS = Limits(Channel.SMS)
words = st.lists(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["C", "Z"]),
             min_size=1, max_size=12),
    max_size=120,
)
options = st.lists(st.text(alphabet="abcdefghij ", max_size=20).map(lambda s: f"1 {s}"),
                   max_size=4)


def test_a_short_screen_is_one_page() -> None:
    assert paginate("Bonjour", ["1 Oui", "2 Non"], more="Suite", back="Retour",
                    limits=USSD) == ["Bonjour\n1 Oui\n2 Non"]


def test_a_long_screen_is_paged_with_98_then_0() -> None:
    body = " ".join(["mot"] * 120)
    pages = paginate(body, ["1 Oui"], more="Suite", back="Retour", limits=USSD)
    assert len(pages) >= 3
    assert pages[0].endswith("\n98 Suite")
    assert pages[1].endswith("\n98 Suite\n0 Retour")
    assert pages[-1].endswith("\n1 Oui")


@given(words, options, st.sampled_from([USSD, SMS]))
def test_every_page_fits_and_no_word_is_lost(body_words: list[str], tail: list[str],
                                             limits: Limits) -> None:
    body = " ".join(body_words)
    pages = paginate(body, tail, more="Suite", back="Retour", limits=limits)
    for page in pages:
        assert limits.fits(page), (len(USSD_CONTINUE + page), page)
    text = " ".join(pages)
    for word in body_words:
        assert word in text
    for line in tail:
        assert pages[-1].endswith("\n".join(tail)) or line in pages[-1]
