"""Gateway requests read and answered: fields, senders, keys, TwiML and USSD screens."""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr
from starlette.datastructures import FormData

from bot.channels import africastalking_ussd as ussd
from bot.channels import twilio_sms as twilio
from bot.channels.forms import MAX_FIELDS, form_pairs, parse_form
from bot.engine.render import Reply
from bot.errors import MalformedRequest


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
                             serviceCode="*384*55#"), "ML")
    assert (hop.phone, hop.text, hop.session_id) == ("+22376000001", "1*2", "ATUid_1")
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
        ussd.read_hop(form(**fields), "ML")


@given(st.binary(max_size=300))
def test_any_body_is_parsed_or_refused_as_malformed(body: bytes) -> None:
    with contextlib.suppress(MalformedRequest):
        fields = parse_form(body)
        assert all(isinstance(value, str) for _, value in fields.multi_items())


@given(st.text(alphabet="ab=&%+2AFéx0;", max_size=40) | st.text(max_size=30))
def test_form_fields_are_read_as_parse_qsl_reads_them(text: str) -> None:
    try:
        expected: list[tuple[str, str]] | None = parse_qsl(
            text, keep_blank_values=True, encoding="utf-8", errors="strict",
            max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        expected = None
    try:
        found: list[tuple[str, str]] | None = form_pairs(text)
    except (UnicodeDecodeError, ValueError):
        found = None
    assert found == expected


def test_too_many_fields_are_refused_as_parse_qsl_refuses_them() -> None:
    body = "&".join(f"f{n}=1" for n in range(MAX_FIELDS))
    assert len(form_pairs(body)) == MAX_FIELDS
    with pytest.raises(ValueError):
        form_pairs(body + "&one=more")
