"""The provider allow-list (tensorseal.keys.provider_allow), the cases of
test/keys/provider-allow.test.ts: which entries are valid, what they match, that only the
list's own aliases are ever resolved, and that a key reference from a file cannot drive the
terminal through the refusal message."""

from __future__ import annotations

import re

import pytest

from tensorseal import TensorSealError
from tensorseal.errors import fail
from tensorseal.keys.provider_allow import ProviderAllowList, ProviderKeyPolicy, allow_entry_problem, provider_allow_list_from_env

A = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
B = "arn:aws:kms:eu-west-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab"


class Resolver:
    def __init__(self, answers: dict[str, str]) -> None:
        self.answers, self.asked = answers, []  # type: ignore[var-annotated]

    def __call__(self, ref: str) -> str:
        self.asked.append(ref)
        if ref not in self.answers:
            fail("E_PROVIDER", f"NotFound {ref}")
        return self.answers[ref]


def refused(f, pattern: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TensorSealError) as e:
        f()
    assert e.value.code == "E_KEY_STATE", e.value.message
    assert re.search(pattern, e.value.message), e.value.message


@pytest.mark.parametrize("ok", [A, "arn:aws:kms:*:111122223333:key/*", "arn:aws:kms:eu-*:111122223333:key/*",
                                "arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/mrk-0123456789abcdef0123456789abcdef",
                                "alias/ml-models", "arn:aws:kms:eu-west-1:111122223333:alias/ml-models",
                                "1234abcd-12ab-34cd-56ef-1234567890ab"])  # fmt: skip
def test_valid_aws_kms_entries(ok: str) -> None:
    assert allow_entry_problem("aws-kms", ok) is None


@pytest.mark.parametrize(("bad", "why"), [("*", "never in the account"), ("arn:aws:kms:eu-west-1:*:key/*", "never in the account"),
                                          ("arn:*:kms:eu-west-1:111122223333:key/*", "never in the account"),
                                          ("arn:aws:kms:eu-west-1:111122223333:alias/*", "never in the account"),
                                          ("arn:aws:s3:::bucket", "expected a key ARN"), ("", "expected a key ARN"),
                                          ("arn:aws:kms:eu-west-1:１１１１２２２２３３３３:key/x", "expected a key ARN")])  # fmt: skip
def test_invalid_aws_kms_entries(bad: str, why: str) -> None:
    assert why in (allow_entry_problem("aws-kms", bad) or "")
    with pytest.raises(TensorSealError) as e:
        ProviderKeyPolicy(ProviderAllowList(aws_kms=[bad]))
    assert e.value.code == "E_USAGE"


def test_pkcs11_entries() -> None:
    assert allow_entry_problem("pkcs11", "prod-hsm") is None
    assert allow_entry_problem("pkcs11", "prod-hsm/models/v2") is None
    assert "TOKEN or TOKEN/KEYLABEL" in (allow_entry_problem("pkcs11", "prod-hsm/") or "")
    assert "TOKEN or TOKEN/KEYLABEL" in (allow_entry_problem("pkcs11", "/k") or "")
    assert "32 bytes" in (allow_entry_problem("pkcs11", "t" * 33 + "/k") or "")


def test_the_list_is_required() -> None:
    for bad in (None, "prod-hsm", {"awsKms": [A]}):
        with pytest.raises(TensorSealError) as e:
            ProviderKeyPolicy(bad)  # type: ignore[arg-type]
        assert e.value.code == "E_USAGE"


def test_an_empty_list_allows_nothing_and_asks_nobody() -> None:
    r = Resolver({})
    p = ProviderKeyPolicy(ProviderAllowList())
    refused(lambda: p.check_aws_kms(A, r), "is not allowed, so KMS was not asked")
    refused(lambda: p.check_pkcs11("prod/k"), "is not allowed, so no session was opened on token prod")
    assert r.asked == []


def test_arns_and_patterns_match_only_their_account() -> None:
    r = Resolver({})
    ProviderKeyPolicy({"aws_kms": [A]}).check_aws_kms(A, r)
    refused(lambda: ProviderKeyPolicy({"aws_kms": [A]}).check_aws_kms(B, r), "444455556666")
    acct = ProviderKeyPolicy({"aws_kms": ["arn:aws:kms:*:111122223333:key/*"]})
    acct.check_aws_kms(A, r)
    acct.check_aws_kms(A.replace("eu-west-1", "us-east-2"), r)
    refused(lambda: acct.check_aws_kms(B, r), "not allowed")
    # A region pattern cannot swallow the account: "*" never crosses ':'.
    refused(lambda: acct.check_aws_kms("arn:aws:kms:eu-west-1:444455556666:key/x:111122223333:key/y", r), "not allowed")
    eu = ProviderKeyPolicy({"aws_kms": ["arn:aws:kms:eu-*:111122223333:key/*"]})
    eu.check_aws_kms(A, r)
    refused(lambda: eu.check_aws_kms(A.replace("eu-west-1", "us-east-1"), r), "not allowed")
    assert r.asked == []


def test_aliases_resolve_once_and_the_stanzas_key_never() -> None:
    r = Resolver({"alias/ml": A})
    p = ProviderKeyPolicy({"aws_kms": ["alias/ml", "alias/gone"]})
    p.check_aws_kms(A, r)
    refused(lambda: p.check_aws_kms(B, r), r"444455556666.* is not allowed.*could not be resolved: alias/gone \(NotFound alias/gone\)")
    p.check_aws_kms(A, r)
    assert sorted(r.asked) == ["alias/gone", "alias/ml"]
    p.check_aws_kms("alias/ml", r)  # a stanza naming the very same allowed alias
    refused(lambda: p.check_aws_kms("alias/other", r), "alias/other is not allowed")


def test_pkcs11_token_and_key_entries() -> None:
    p = ProviderKeyPolicy({"pkcs11": ["prod", "lab/k1"]})
    p.check_pkcs11("prod/anything")
    p.check_pkcs11("lab/k1")
    refused(lambda: p.check_pkcs11("lab/k2"), "pkcs11 key lab/k2 is not allowed")
    refused(lambda: p.check_pkcs11("production/k"), "token production")


def test_the_environment_and_its_errors() -> None:
    env = provider_allow_list_from_env({"TENSORSEAL_KMS_KEYS": f" {A}, alias/ml ,", "TENSORSEAL_PKCS11_TOKENS": "prod"})
    assert (env.aws_kms, env.pkcs11) == ((A, "alias/ml"), ("prod",))
    assert provider_allow_list_from_env({}) == ProviderAllowList()
    with pytest.raises(TensorSealError) as e:
        provider_allow_list_from_env({"TENSORSEAL_KMS_KEYS": "arn:aws:kms:eu-west-1:*:key/*"})
    assert e.value.code == "E_USAGE" and re.match(r"^TENSORSEAL_KMS_KEYS: entry .*account", e.value.message)


def test_a_key_reference_from_a_file_cannot_drive_the_terminal() -> None:
    p = ProviderKeyPolicy(ProviderAllowList())
    with pytest.raises(TensorSealError) as e:
        p.check_pkcs11("tok\x1b[2J\u202e/k")
    assert not re.search("[\x1b\u202e]", e.value.message)
    assert "tok\\u001b[2J\\u202e/k" in e.value.message
    with pytest.raises(TensorSealError) as e:
        p.check_aws_kms("x" * 5000, Resolver({}))
    assert len(e.value.message) < 1200
