from hypothesis import given
from hypothesis import strategies as st

from bot.engine import sms


def test_plain_french_with_gsm_accents_is_gsm7() -> None:
    assert sms.encoding("Réfugié à Gao, où aller ?") is sms.Encoding.GSM7


def test_letters_outside_gsm7_force_ucs2() -> None:
    for text in ("Bamanankan: ɛ", "être", "garçon", "l’aide", "« guillemets »", "🙂"):
        assert sms.encoding(text) is sms.Encoding.UCS2, text


def test_segment_boundaries() -> None:
    assert sms.segments("a" * 160) == 1
    assert sms.segments("a" * 161) == 2
    assert sms.segments("a" * 306) == 2
    assert sms.segments("a" * 307) == 3
    assert sms.segments("ɛ" * 70) == 1
    assert sms.segments("ɛ" * 71) == 2
    assert sms.segments("ɛ" * 201) == 3
    assert sms.segments("ɛ" * 202) == 4


def test_extension_characters_count_twice() -> None:
    assert sms.segments("€" * 80) == 1
    assert sms.segments("€" * 81) == 2


@given(st.text(max_size=600))
def test_segments_grow_with_length(text: str) -> None:
    assert sms.segments(text + "a") >= sms.segments(text) >= 1


def _codec_septets(text: str) -> int | None:
    try:
        return len(text.encode("gsm03.38"))
    except UnicodeEncodeError:
        return None


def test_septets_are_the_codecs_for_every_character() -> None:
    # The codec encodes character by character: agreeing on each one is agreeing on all.
    for code in [*range(0xD800), *range(0xE000, 0x10000), 0x1F642, 0x10FFFF]:
        character = chr(code)
        assert sms._septets(character) == _codec_septets(character), hex(code)


@given(st.text(alphabet=st.sampled_from("aé€[]{}^\\|~ɛ’\n\x1b🙂 Ü"), max_size=300))
def test_septets_are_the_codecs_for_mixed_texts(text: str) -> None:
    assert sms._septets(text) == _codec_septets(text)
