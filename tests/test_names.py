"""names: what each string is, its X.509 form, and the reason for every refusal."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tlskit.errors import InvalidNameError
from tlskit.names import NameKind, classify_constraint, classify_name, safe_name

HINT = "names are DNS names (localhost, *.dev.test), IP addresses, emails or URIs"


@pytest.mark.parametrize(
    ("given", "kind", "value"),
    [
        ("localhost", NameKind.DNS, "localhost"),
        ("LocalHost.", NameKind.DNS, "localhost"),  # case and the root dot do not matter
        ("api.dev.test", NameKind.DNS, "api.dev.test"),
        ("*.dev.test", NameKind.WILDCARD, "*.dev.test"),
        ("127.0.0.1", NameKind.IP, "127.0.0.1"),
        ("::1", NameKind.IP, "::1"),
        ("[::1]", NameKind.IP, "::1"),
        ("2001:DB8::0:1", NameKind.IP, "2001:db8::1"),
        ("user@dev.test", NameKind.EMAIL, "user@dev.test"),
        ("spiffe://dev.test/api", NameKind.URI, "spiffe://dev.test/api"),
        ("https://dev.test:8443/x", NameKind.URI, "https://dev.test:8443/x"),
        ("urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66", NameKind.URI, "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66"),
    ],
)
def test_classify_name_recognises_each_kind(given: str, kind: NameKind, value: str) -> None:
    ident = classify_name(given)
    assert (ident.kind, ident.value, ident.given) == (kind, value, given)


@pytest.mark.parametrize(
    ("given", "alabel"),
    [
        ("bücher.test", "xn--bcher-kva.test"),
        ("Bücher.Test", "xn--bcher-kva.test"),  # UTS-46 maps upper case before encoding
        ("ｂüｃｈｅｒ.test", "xn--bcher-kva.test"),  # full-width letters are mapped too
        ("bücher。test", "xn--bcher-kva.test"),  # the ideographic full stop separates labels
        # IDNA 2008 keeps ß (IDNA 2003, Python's "idna" codec, maps it to "ss": fass.de, another domain).
        ("faß.de", "xn--fa-hia.de"),
        ("*.bücher.test", "*.xn--bcher-kva.test"),
        ("user@bücher.test", "user@xn--bcher-kva.test"),
    ],
)
def test_international_names_become_idna2008_alabels(given: str, alabel: str) -> None:
    assert classify_name(given).value == alabel


def test_idna2008_differs_from_pythons_idna2003_codec() -> None:
    # The negative twin of the ß case: the built-in codec would have certified another domain.
    assert "faß.de".encode("idna") == b"fass.de"
    assert classify_name("faß.de").value != "fass.de"


LONG_LABEL = "a" * 64
LONG_NAME = ".".join(["a" * 63] * 4)  # 255 characters


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("exa mple.com", "'exa mple.com' is not a valid DNS name: spaces are not allowed"),
        ("", "'' is not a valid DNS name: it is empty"),
        ("a..test", "'a..test' is not a valid DNS name: it has an empty label (two dots in a row, or a leading dot)"),
        (".test", "'.test' is not a valid DNS name: it has an empty label (two dots in a row, or a leading dot)"),
        (
            f"{LONG_LABEL}.test",
            f"'{LONG_LABEL}.test' is not a valid DNS name: the label 'aaaaaaaaaaaaaaaaaaaa'… is 64 characters long; "
            "the limit is 63",
        ),
        (LONG_NAME, f"'{LONG_NAME}' is not a valid DNS name: it is 255 characters long; the limit is 253"),
        (
            "*.*.test",
            "'*.*.test' is not a valid wildcard name: '*' must be the whole left-most label, once "
            "(like '*.example.test'); partial or nested wildcards are refused by browsers",
        ),
        (
            "foo*.test",
            "'foo*.test' is not a valid wildcard name: '*' must be the whole left-most label, once "
            "(like '*.example.test'); partial or nested wildcards are refused by browsers",
        ),
        ("*", "'*' is not a valid wildcard name: a bare '*' would match every name; use '*.example.test'"),
        (
            "*.test",
            "'*.test' is not a valid wildcard name: a wildcard needs at least two labels after '*.' (like '*.dev.test')",
        ),
        ("my_host.test", "'my_host.test' is not a valid DNS name: '_' is not allowed in host names (use '-')"),
        ("-api.test", "'-api.test' is not a valid DNS name: the label '-api' starts or ends with '-'"),
        ("api-.test", "'api-.test' is not a valid DNS name: the label 'api-' starts or ends with '-'"),
        ("api!.test", "'api!.test' is not a valid DNS name: character(s) '!' are not allowed"),
        (
            "☃.test",
            "'☃.test' is not a valid DNS name: international label '☃' is not valid IDNA 2008 "
            "(Codepoint U+2603 at position 1 of '☃' not allowed)",
        ),
        (
            "xn--zz.test",
            "'xn--zz.test' is not a valid DNS name: 'xn--zz' is not a valid A-label (punycode) (Invalid A-label)",
        ),
        ("1.2.3.4.5", "'1.2.3.4.5' is not a valid DNS name: it looks like an IP address but is not a valid one"),
        ("256.1.1.1", "'256.1.1.1' is not a valid DNS name: it looks like an IP address but is not a valid one"),
        (
            "127.0.0.0/8",
            "'127.0.0.0/8' is not a valid certificate name: IP ranges belong in 'ca init --permit', not in a certificate",
        ),
        ("10.0.0.1/8", "'10.0.0.1/8' is not a valid IP network: 10.0.0.1/8 has host bits set"),
        ("fe80::1%eth0", "'fe80::1%eth0' is not a valid IP address: a zone index ('%…') cannot go in a certificate"),
        ("@dev.test", "'@dev.test' is not a valid email address: the part before '@' is empty"),
        ("us er@dev.test", "'us er@dev.test' is not a valid email address: the part before '@' must be ASCII without spaces"),
        ("user@exa mple.com", "'exa mple.com' is not a valid email domain: spaces are not allowed"),
        ("user@*.dev.test", "'*.dev.test' is not a valid email domain: wildcards are not allowed here"),
        ("https://", "'https://' is not a valid URI: it has no host after '://'"),
        ("https://exa_mple.test/", "'exa_mple.test' is not a valid URI host: '_' is not allowed in host names (use '-')"),
    ],
)
def test_classify_name_refuses_with_its_own_reason(given: str, message: str) -> None:
    with pytest.raises(InvalidNameError) as info:
        classify_name(given)
    assert info.value.message == message
    assert info.value.hint == HINT
    assert info.value.exit_code == 6


@pytest.mark.parametrize(
    ("given", "kind", "value"),
    [
        ("localhost", NameKind.DNS, "localhost"),
        (".test", NameKind.DNS, "test"),  # a DNS constraint covers the name and everything under it
        ("dev.test", NameKind.DNS, "dev.test"),
        ("127.0.0.0/8", NameKind.NETWORK, "127.0.0.0/8"),
        ("127.0.0.1", NameKind.NETWORK, "127.0.0.1/32"),  # a single address becomes its /32
        ("::1", NameKind.NETWORK, "::1/128"),
        ("fd00::/8", NameKind.NETWORK, "fd00::/8"),
        ("user@dev.test", NameKind.EMAIL, "user@dev.test"),
    ],
)
def test_classify_constraint_accepts_suffixes_and_ranges(given: str, kind: NameKind, value: str) -> None:
    ident = classify_constraint(given)
    assert (ident.kind, ident.value, ident.given) == (kind, value, given)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            "*.dev.test",
            "'*.dev.test' is not a valid name constraint: write the suffix without '*' ('.dev.test' covers '*.dev.test')",
        ),
        ("..test", "'..test' is not a valid DNS name: it has an empty label (two dots in a row, or a leading dot)"),
        ("10.0.0.1/8", "'10.0.0.1/8' is not a valid IP network: 10.0.0.1/8 has host bits set"),
    ],
)
def test_classify_constraint_refuses_with_its_reason(given: str, message: str) -> None:
    with pytest.raises(InvalidNameError) as info:
        classify_constraint(given)
    assert info.value.message == message


@pytest.mark.parametrize(
    ("name", "folder"),
    [
        ("localhost", "localhost"),
        ("*.example.test", "_wildcard.example.test"),
        ("::1", "__1"),
        ("user@dev.test", "user@dev.test"),
        ("spiffe://dev.test/api", "spiffe___dev.test_api"),
        ("../../etc", "_.._etc"),  # never a path out of HOME/certs/
        ("", "_"),
    ],
)
def test_safe_name_makes_a_single_harmless_folder_name(name: str, folder: str) -> None:
    assert safe_name(name) == folder
    assert "/" not in safe_name(name) and not safe_name(name).startswith(".")


# --- property: whatever is accepted as a DNS name is in its final, canonical form ---------

_LDH_LABEL = re.compile(r"\A[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
_label_chars = st.sampled_from(list("abcxyzABCXYZ0189-_*. ") + list("üßçéÖıİΣσςкиї中文ｂ。ⅫK\u200d\u0301☃"))
_labels = st.text(_label_chars, min_size=0, max_size=70)
_names = st.one_of(
    st.lists(_labels, min_size=1, max_size=6).map(".".join),
    st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,63}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,63}[a-z0-9])?){0,5}\Z"),
    st.text(max_size=80),
)


@settings(max_examples=400, deadline=None)
@given(_names)
@example("faß.de")
@example("Ⅻ.test")  # a non-ASCII label that maps to plain ASCII
@example("xn--bcher-kva.test")
@example(("a" * 63 + ".") * 3 + "a" * 61)  # exactly 253 characters
def test_accepted_dns_names_are_canonical_ldh_ascii(name: str) -> None:
    try:
        ident = classify_name(name)
    except InvalidNameError:
        return
    if ident.kind not in (NameKind.DNS, NameKind.WILDCARD):
        return
    value = ident.value
    assert value.isascii()
    assert len(value) <= 253
    labels = value.split(".")
    if ident.kind is NameKind.WILDCARD:
        assert labels[0] == "*" and len(labels) >= 3
        labels = labels[1:]
    assert all(_LDH_LABEL.match(label) for label in labels), value
    again = classify_name(value)  # idempotent: the certificate's form classifies as itself
    assert (again.kind, again.value) == (ident.kind, value)
