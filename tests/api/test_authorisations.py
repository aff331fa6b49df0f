"""Where authorisations (授权书) are stored, revoked and read back for a decision
(:mod:`api.precredit.repository`): fast, on a SQLite database in ``tmp_path`` built by the migrations.

The promises: a bank gets a decision only with a valid authorisation of that enterprise given to
it; a revoked one is refused from the next question on; the authorisation read back for a question
is the one stored, with the published profile of the enterprise it names (and only that one).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil

import pytest
from sqlalchemy import update

from api.access import clients
from api.common.errors import http_status
from api.common.refusals import Refusal
from api.db.engine import make_engine, reading, sessions, writing
from api.db.tables import PublishedProfile
from api.precredit import repository
from api.precredit.decide import check_authorization

CODE_A, CODE_B, CODE_C = "91420502R2575QTJ8H", "9142050212ADKE846Q", "91420502MN13ECUGXX"
DAY = dt.date(2026, 7, 1)
UTC_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


@pytest.fixture
def store(schema, tmp_path):
    """A fresh database (the repository's own schema) with two banks, a regulator and an operator."""
    shutil.copyfile(schema, tmp_path / "xyd.db")
    engine = make_engine(f"sqlite:///{tmp_path}/xyd.db")
    factory = sessions(engine)
    with writing(factory) as session:
        banks = [clients.add_client(session, name, "bank")[0].id for name in ("甲银行", "乙银行")]
        regulator = clients.add_client(session, "人民银行宜昌市分行", "regulator")[0].id
        operator = clients.add_client(session, "平台运营", "operator")[0].id
    yield engine, factory, banks, regulator, operator
    engine.dispose()


def _add(session, code, bank, start=DAY, end=DAY + dt.timedelta(days=364), purpose="流动资金贷款"):
    return repository.add_authorization(session, code, bank, purpose, "tax,utilities", start, end, "2026.1",
                                        "ab" * 32)


def test_an_authorisation_is_kept_as_given_and_read_back_for_a_question(store):
    engine, factory, (bank, _), _, _ = store
    with writing(factory) as session:
        record = _add(session, CODE_A, bank)
        given = record.id
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", given)
    with reading(engine) as connection:
        found, profiles = repository.authorizations_with_profiles(connection, [given])
    row = found[given]
    assert (row.uscc, row.bank_id, row.purpose, row.data_scope, row.template_version, row.document_hash) == \
        (CODE_A, bank, "流动资金贷款", "tax,utilities", "2026.1", "ab" * 32)
    assert (row.valid_from, row.valid_until, row.revoked_at) == (DAY, DAY + dt.timedelta(days=364), None)
    assert UTC_TEXT.match(row.created_at)
    assert profiles == {}  # the enterprise has no published profile yet
    check_authorization(row, bank, CODE_A, DAY)  # valid: it answers


def test_only_a_bank_can_be_given_an_authorisation(store):
    _, factory, (bank, _), regulator, operator = store
    for client in (regulator, operator, 9_999):
        with writing(factory) as session, pytest.raises(ValueError, match=f"client {client} is not a bank"):
            _add(session, CODE_A, client)
    with writing(factory) as session:
        assert repository.list_authorizations(session)[0] == 0
        assert _add(session, CODE_A, bank).bank_id == bank


def test_an_authorisation_ends_on_or_after_the_day_it_starts(store):
    _, factory, (bank, _), _, _ = store
    with writing(factory) as session:
        with pytest.raises(ValueError, match="before valid_from"):
            _add(session, CODE_A, bank, start=DAY, end=DAY - dt.timedelta(days=1))
        one_day = _add(session, CODE_A, bank, start=DAY, end=DAY)  # a single day is a valid authorisation
        assert (one_day.valid_from, one_day.valid_until) == (DAY, DAY)
        assert repository.list_authorizations(session)[0] == 1


def test_every_authorisation_gets_its_own_id(store):
    _, factory, (bank, _), _, _ = store
    with writing(factory) as session:
        ids = {_add(session, CODE_A, bank).id for _ in range(5)}
    assert len(ids) == 5


def test_revoking_refuses_the_next_question_and_keeps_the_first_revocation_time(store):
    engine, factory, (bank, _), _, _ = store
    with writing(factory) as session:
        given = _add(session, CODE_A, bank).id
    with reading(engine) as connection:
        before = repository.authorizations_with_profiles(connection, [given])[0][given]
    check_authorization(before, bank, CODE_A, DAY)
    with writing(factory) as session:
        revoked = repository.revoke_authorization(session, given)
        first = revoked.revoked_at
    assert revoked.id == given and first is not None and UTC_TEXT.match(first)
    with reading(engine) as connection:  # the very next read refuses it
        after = repository.authorizations_with_profiles(connection, [given])[0][given]
    assert after.revoked_at == first
    with pytest.raises(Refusal) as refused:
        check_authorization(after, bank, CODE_A, DAY)
    assert (http_status(refused.value), refused.value.code) == (403, "AUTHORIZATION_REVOKED")
    with writing(factory) as session:  # revoking again changes nothing: the first revocation stands
        again = repository.revoke_authorization(session, given)
        assert again.revoked_at == first
    with writing(factory) as session:
        assert repository.revoke_authorization(session, "no-such-authorisation") is None


def test_revoking_one_authorisation_leaves_the_others_valid(store):
    engine, factory, (bank, other), _, _ = store
    with writing(factory) as session:
        kept, gone = _add(session, CODE_A, bank).id, _add(session, CODE_A, bank).id
        repository.revoke_authorization(session, gone)
    with reading(engine) as connection:
        found, _ = repository.authorizations_with_profiles(connection, [kept, gone])
    assert found[kept].revoked_at is None and found[gone].revoked_at is not None
    check_authorization(found[kept], bank, CODE_A, DAY)


def test_listing_filters_by_enterprise_and_bank_and_pages_in_creation_order(store):
    _, factory, (bank, other), _, _ = store
    made = []
    with writing(factory) as session:
        for code, client in [(CODE_A, bank), (CODE_B, bank), (CODE_A, other), (CODE_A, bank), (CODE_C, other)]:
            made.append((_add(session, code, client).id, code, client))
    with writing(factory) as session:
        count, rows = repository.list_authorizations(session)
        assert count == 5 and [r.id for r in rows] == [m[0] for m in made]  # oldest first
        count, rows = repository.list_authorizations(session, uscc=CODE_A)
        assert count == 3 and [r.id for r in rows] == [m[0] for m in made if m[1] == CODE_A]
        count, rows = repository.list_authorizations(session, bank_id=other)
        assert count == 2 and [r.id for r in rows] == [m[0] for m in made if m[2] == other]
        count, rows = repository.list_authorizations(session, uscc=CODE_A, bank_id=bank)
        assert count == 2 and [r.id for r in rows] == [m[0] for m in made if m[1] == CODE_A and m[2] == bank]
        assert repository.list_authorizations(session, uscc="")[0] == 5  # an empty filter filters nothing
        assert repository.list_authorizations(session, uscc=CODE_B, bank_id=other) == (0, [])
        count, rows = repository.list_authorizations(session, limit=2, offset=1)  # a page; the count is all
        assert count == 5 and [r.id for r in rows] == [m[0] for m in made[1:3]]
        count, rows = repository.list_authorizations(session, uscc=CODE_A, limit=1, offset=2)
        assert count == 3 and [r.id for r in rows] == [made[3][0]]


def test_an_equal_creation_time_is_ordered_by_id(store):
    _, factory, (bank, _), _, _ = store
    with writing(factory) as session:
        ids = [_add(session, CODE_A, bank).id for _ in range(4)]
        session.flush()
        from api.db.tables import Authorization
        session.execute(update(Authorization).values(created_at="2026-07-01T00:00:00.000000Z"))
    with writing(factory) as session:
        assert [r.id for r in repository.list_authorizations(session)[1]] == sorted(ids)


def _publish(factory, code, name, values, evidence=None, disputes=None, as_of=dt.date(2026, 6, 30)):
    with writing(factory) as session:
        session.add(PublishedProfile(uscc=code, name=name, as_of=as_of, feature_set_version="f" * 12,
                                     features=json.dumps(values), published_at=repository.now_iso(),
                                     evidence=None if evidence is None else json.dumps(evidence, ensure_ascii=False),
                                     disputes=None if disputes is None else json.dumps(disputes, ensure_ascii=False)))


def test_a_question_reads_its_authorisation_with_the_profile_of_the_enterprise_it_names(store):
    engine, factory, (bank, other), _, _ = store
    evidence = {"dishonest_listed_now": [{"number": "(2025)鄂0502执1号"}]}
    disputes = [{"kind": "objection", "source": "dishonest_debtors", "record": {"case_no": "(2025)鄂0502执1号"},
                 "feature": None, "features": ["dishonest_listed_now"], "filed": "2026-07-01", "due": "2026-07-08"}]
    _publish(factory, CODE_A, "甲公司", [1.0, None, "A"], evidence, disputes)
    _publish(factory, CODE_B, None, [0.5, 2.0, None], as_of=dt.date(2026, 5, 31))
    _publish(factory, CODE_C, "丙公司", [9.0, 9.0, 9.0])  # nobody asks about it
    with writing(factory) as session:
        a, b, b_other = _add(session, CODE_A, bank).id, _add(session, CODE_B, bank).id, _add(session, CODE_B, other).id
        unpublished = repository.add_authorization(session, "91420502DDLJ5NPX72", bank, "p", "s", DAY, DAY, "t", "h").id
    with reading(engine) as connection:
        found, profiles = repository.authorizations_with_profiles(connection, [a, b, b, "missing", unpublished])
    assert set(found) == {a, b, unpublished}  # each once, the unknown id absent
    assert found[b].bank_id == bank and found[a].uscc == CODE_A and found[unpublished].revoked_at is None
    assert set(profiles) == {CODE_A, CODE_B}  # only the enterprises asked about, and only those published
    pa, pb = profiles[CODE_A], profiles[CODE_B]
    assert (pa.uscc, pa.name, pa.as_of, pa.feature_set_version, pa.values) == \
        (CODE_A, "甲公司", dt.date(2026, 6, 30), "f" * 12, [1.0, None, "A"])
    assert pa.evidence == evidence and pa.disputes == disputes
    assert (pb.uscc, pb.name, pb.as_of, pb.values, pb.evidence, pb.disputes) == \
        (CODE_B, None, dt.date(2026, 5, 31), [0.5, 2.0, None], None, None)
    # one question (one id) reads the same as in a batch
    for given, code in ((a, CODE_A), (b_other, CODE_B), (unpublished, None)):
        with reading(engine) as connection:
            one, its = repository.authorizations_with_profiles(connection, [given])
        assert list(one) == [given] and one[given].uscc == (code or "91420502DDLJ5NPX72")
        assert list(its) == ([code] if code else [])
        if code:
            assert its[code] == profiles[code]
    with reading(engine) as connection:
        assert repository.authorizations_with_profiles(connection, ["missing"]) == ({}, {})
        assert repository.authorizations_with_profiles(connection, []) == ({}, {})  # a batch whose every question failed
        assert repository.authorizations_with_profiles(connection, [b_other, b_other])[0][b_other].bank_id == other
    # another bank's authorisation is found, and refused for this bank
    with pytest.raises(Refusal) as refused:
        check_authorization(found[b], other, CODE_B, DAY)
    assert refused.value.code == "AUTHORIZATION_OTHER_BANK"



def test_authorisations_are_listed_a_hundred_at_a_time_from_the_first_unless_asked_otherwise(store):
    """An operator listing without paging sees a page of 100, and the total."""
    _, factory, banks, _, _ = store
    with writing(factory) as session:
        made = [_add(session, CODE_A, banks[0], purpose=f"贷款{n:03d}").id for n in range(101)]
    with factory() as session:
        total, page = repository.list_authorizations(session)
    assert total == 101 and len(page) == 100 and {a.id for a in page} < set(made)
