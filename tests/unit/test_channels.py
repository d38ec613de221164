"""Gateway requests read and answered: fields, senders, keys, TwiML and USSD screens."""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from urllib.parse import parse_qsl

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import SecretStr
from starlette.datastructures import FormData

from bot.channels import africastalking_ussd as ussd
from bot.channels import twilio_sms as twilio
from bot.channels.forms import MAX_FIELDS, form_fields, form_pairs, parse_form
from bot.engine.render import Reply
from bot.errors import MalformedRequest
from bot.privacy import Senders, pseudonym


def form(**fields: str) -> FormData:
    return FormData(list(fields.items()))


def test_an_sms_from_a_whatsapp_sender_is_read_as_its_phone() -> None:
    sms = twilio.read_sms(form(MessageSid="SM1", From="whatsapp:+22376000001", Body="Bonjour"),
                          "ML")
    assert sms.phone == "+22376000001" and sms.body == "Bonjour"


def test_a_local_number_is_read_in_the_default_region() -> None:
    assert twilio.read_sms(form(MessageSid="SM1", From="76000001"), "ML").phone == "+22376000001"


def test_a_sender_that_is_no_phone_number_has_no_phone() -> None:
    assert twilio.read_sms(form(MessageSid="SM1", From="MTN", Body="promo"), "ML").phone is None


@pytest.mark.parametrize(("opt_out", "body"), [("STOP", "STOP"), ("START", "START"),
                                               ("HELP", "MENU"), ("", "Arrête")])
def test_twilios_advanced_opt_out_keyword_is_honoured(opt_out: str, body: str) -> None:
    sms = twilio.read_sms(form(MessageSid="SM1", From="+22376000001", Body="Arrête",
                               OptOutType=opt_out), "ML")
    assert sms.body == body


@pytest.mark.parametrize("fields", [{"From": "+22376000001"}, {"MessageSid": "SM1"},
                                    {"MessageSid": "", "From": "+22376000001"}])
def test_an_sms_without_sid_or_sender_is_malformed(fields: dict[str, str]) -> None:
    with pytest.raises(MalformedRequest):
        twilio.read_sms(form(**fields), "ML")


def test_twiml_says_the_reply_or_nothing() -> None:
    said = ET.fromstring(twilio.twiml(Reply(text="Bonjour <&> ɛ")))
    assert [message.text for message in said.iter("Message")] == ["Bonjour <&> ɛ"]
    assert list(ET.fromstring(twilio.twiml(Reply(text=""))).iter("Message")) == []


def test_the_public_url_is_what_twilio_signed() -> None:
    signature = twilio.TwilioSignature(SecretStr("token"), "https://public.example/")
    scope = {"path": "/webhooks/twilio/sms", "raw_path": b"/webhooks/twilio/sms",
             "query_string": b"a=1"}
    assert (signature.url(scope, "http://127.0.0.1:8000/webhooks/twilio/sms?a=1")
            == "https://public.example/webhooks/twilio/sms?a=1")
    unset = twilio.TwilioSignature(SecretStr("token"), None)
    assert unset.url(scope, "http://127.0.0.1:8000/x") == "http://127.0.0.1:8000/x"


def test_the_ussd_key_must_match_exactly() -> None:
    secret = SecretStr("s3cret")
    assert ussd.key_matches(secret, "s3cret")
    assert not ussd.key_matches(secret, "S3CRET") and not ussd.key_matches(secret, None)
    assert ussd.key_matches(None, None)  # dev without a secret


def test_a_hop_is_read_and_answered_con_or_end() -> None:
    hop = ussd.read_hop(form(sessionId="ATUid_1", phoneNumber="+22376000001", text="1*2",
                             serviceCode="*384*55#"), Senders(b"key", "ML").sender)
    assert (hop.phone, hop.text, hop.session_id) == ("+22376000001", "1*2", "ATUid_1")
    assert hop.pseudonym == pseudonym("+22376000001", b"key")
    assert ussd.screen(Reply(text="Menu")) == "CON Menu"
    assert ussd.screen(Reply(text="Merci", end=True)) == "END Merci"


@pytest.mark.parametrize("fields", [
    {"phoneNumber": "+22376000001"}, {"sessionId": "A"},
    {"sessionId": "A", "phoneNumber": "not a phone"},
    {"sessionId": "A" * 200, "phoneNumber": "+22376000001"},
    {"sessionId": "A", "phoneNumber": "+22376000001", "text": "1*" * 3000},
])
def test_a_malformed_hop_is_refused(fields: dict[str, str]) -> None:
    with pytest.raises(MalformedRequest):
        ussd.read_hop(form(**fields), Senders(b"key", "ML").sender)


def test_senders_remember_pseudonyms_of_e164_fields_never_a_number() -> None:
    senders = Senders(b"key", "ML")
    for _ in range(3):
        assert senders.phone("+22376000001") == "+22376000001"
        assert senders.phone(" 76 00 00 02 ") == "+22376000002"  # parsed every time
        assert senders.phone("+2237600000") is None  # too short for Mali
        # The pseudonym given with the phone is the phone's, however the field spelled it.
        assert senders.sender(" 76 00 00 02 ") == ("+22376000002",
                                                   pseudonym("+22376000002", b"key"))
        assert senders.sender("+22376000001") == ("+22376000001",
                                                  pseudonym("+22376000001", b"key"))
    tags = [*senders.canonical._newer, *senders.canonical._older]
    held = [*senders.canonical._newer.values(), *senders.canonical._older.values()]
    assert held == [pseudonym("+22376000001", b"key")]  # the E.164 field alone
    assert not any(b"22376" in tag or b"+" in tag for tag in tags)  # tags, no numbers


@given(st.binary(max_size=300))
def test_any_body_is_parsed_or_refused_as_malformed(body: bytes) -> None:
    with contextlib.suppress(MalformedRequest):
        fields = parse_form(body)
        assert all(isinstance(value, str) for _, value in fields.multi_items())


@given(st.text(alphabet="ab=&%+23569ABCDcdxé\\ ", max_size=40))
@example("a=%26b&c=%3D%3dd")  # escaped separators: field by field
@example("a=%5Cx41%2A&b=\\x41%2A")  # a backslash, escaped or typed
@example("a=%zz%2A&b=%C3%A9&c=%C3")  # no escape; UTF-8; a cut UTF-8 sequence
def test_a_form_is_read_as_parse_qsl_reads_it(text: str) -> None:
    body = text.encode()
    try:
        expected = parse_qsl(body.decode("ascii"), keep_blank_values=True, errors="strict",
                             max_num_fields=MAX_FIELDS)
    except ValueError:  # not ASCII, or an escape that is no UTF-8
        with pytest.raises(MalformedRequest):
            form_pairs(body)
        with pytest.raises(MalformedRequest):
            form_fields(body)
    else:
        assert form_pairs(body) == expected
        assert form_fields(body) == dict(expected)


def test_too_many_fields_are_refused_as_malformed() -> None:
    body = "&".join(f"f{n}=1" for n in range(MAX_FIELDS))
    assert len(form_fields(body.encode())) == MAX_FIELDS
    with pytest.raises(MalformedRequest, match=f"^more than {MAX_FIELDS} form fields$"):
        form_fields((body + "&one=more").encode())
