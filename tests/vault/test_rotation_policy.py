"""Key rotation policies: ISO 8601 durations, PUT validation, storage/wire forms and the schedule
the active replica derives from stored state (a fake clock: plain Unix seconds)."""

from __future__ import annotations

import calendar
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from kvault.errors import BadParameter, IntegrityError
from kvault.vault.keys.rotation import (
    Due,
    Duration,
    KeyTimes,
    LifetimeAction,
    RotationPolicy,
    due_now,
    empty_response,
    expiry_for_new_version,
    next_due,
)
from kvault.vault.names import MAX_UNIX_TIME

DAY = 86_400
POLICY_ID = "https://v.kv.example/keys/k1/rotationpolicy"


def ts(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> int:
    return calendar.timegm((y, m, d, hh, mm, ss, 0, 0, 0))


def rotate_after(text: str) -> dict[str, Any]:
    return {"trigger": {"timeAfterCreate": text}, "action": {"type": "Rotate"}}


def before_expiry(kind: str, text: str) -> dict[str, Any]:
    return {"trigger": {"timeBeforeExpiry": text}, "action": {"type": kind}}


def put(
    actions: list[dict[str, Any]] | None, expiry: str | None = None, now: int = 1000
) -> RotationPolicy:
    attributes = {} if expiry is None else {"expiryTime": expiry}
    return RotationPolicy.from_request(
        {"lifetimeActions": actions, "attributes": attributes}, now, None
    )


# --- Duration ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected", "shown"),
    [
        ("P1Y", Duration(years=1), "P1Y"),
        ("P3M", Duration(months=3), "P3M"),
        ("P90D", Duration(days=90), "P90D"),
        ("P2W", Duration(days=14), "P2W"),
        ("P1W", Duration(days=7), "P1W"),
        ("PT48H", Duration(seconds=48 * 3600), "PT48H"),
        ("P1Y10D", Duration(years=1, days=10), "P1Y10D"),
        ("PT1H30M", Duration(seconds=5400), "PT1H30M"),
        ("PT90M", Duration(seconds=5400), "PT90M"),
        ("PT60M", Duration(seconds=3600), "PT1H"),
        ("PT30S", Duration(seconds=30), "PT30S"),
        ("P1DT12H", Duration(days=1, seconds=12 * 3600), "P1DT12H"),
        ("P1Y2M3W4DT5H6M7S", Duration(1, 2, 25, 5 * 3600 + 6 * 60 + 7), "P1Y2M25DT5H6M7S"),
        ("P0Y90D", Duration(days=90), "P90D"),
        ("p90d", Duration(days=90), "P90D"),
        ("P1000Y", Duration(years=1000), "P1000Y"),
    ],
)
def test_duration_parses(text: str, expected: Duration, shown: str) -> None:
    d = Duration.parse(text, "attributes.expiryTime")
    assert d == expected
    assert str(d) == shown
    assert Duration.parse(str(d), "x") == d and str(Duration.parse(str(d), "x")) == shown


@pytest.mark.parametrize(
    "text",
    [
        "P",
        "PT",
        "90D",
        "P-1D",
        "-P1D",
        "P0D",
        "PT0S",
        "P0Y0M",
        "P1.5D",
        "P1,5D",
        "PT0.5S",
        "P1D2Y",
        "P1DT",
        "P1H",
        "PT1D",
        " P1D",
        "P1D ",
        "",
        "P1Y1Y",
        "P\u0663D",
        "P1001Y",
        "P1234567890123D",
        "R5/P1D",
        90,
        None,
        True,
        ["P1D"],
        {"days": 1},
    ],
)
def test_duration_rejects(text: Any) -> None:
    with pytest.raises(BadParameter, match=r"lifetimeActions\[0\]\.trigger\.timeAfterCreate"):
        Duration.parse(text, "lifetimeActions[0].trigger.timeAfterCreate")


def test_duration_message_shows_an_example() -> None:
    with pytest.raises(BadParameter) as info:
        Duration.parse("90D", "lifetimeActions[0].trigger.timeAfterCreate")
    assert info.value.message.startswith(
        "lifetimeActions[0].trigger.timeAfterCreate must be an ISO 8601 duration such as P90D"
    )


@pytest.mark.parametrize(
    ("text", "start", "after", "before"),
    [
        ("P1M", ts(2023, 1, 31), ts(2023, 2, 28), ts(2022, 12, 31)),
        ("P1M", ts(2024, 1, 31), ts(2024, 2, 29), ts(2023, 12, 31)),
        ("P1M", ts(2024, 3, 31), ts(2024, 4, 30), ts(2024, 2, 29)),
        ("P1M", ts(2023, 3, 31), ts(2023, 4, 30), ts(2023, 2, 28)),
        ("P2M", ts(2023, 12, 31, 13, 5, 7), ts(2024, 2, 29, 13, 5, 7), ts(2023, 10, 31, 13, 5, 7)),
        ("P1Y", ts(2024, 2, 29), ts(2025, 2, 28), ts(2023, 2, 28)),
        ("P4Y", ts(2024, 2, 29), ts(2028, 2, 29), ts(2020, 2, 29)),
        ("P100Y", ts(2000, 2, 29), ts(2100, 2, 28), ts(1900, 2, 28)),
        ("P1Y10D", ts(2023, 12, 25), ts(2025, 1, 4), ts(2022, 12, 15)),
        ("P1M1D", ts(2023, 1, 31), ts(2023, 3, 1), ts(2022, 12, 30)),
        ("P13M", ts(2023, 1, 15), ts(2024, 2, 15), ts(2021, 12, 15)),
        ("P90D", ts(2024, 1, 1), ts(2024, 3, 31), ts(2023, 10, 3)),
        ("PT1H30M", ts(2024, 1, 1, 23), ts(2024, 1, 2, 0, 30), ts(2024, 1, 1, 21, 30)),
        ("PT48H", ts(2024, 2, 28), ts(2024, 3, 1), ts(2024, 2, 26)),
        ("P1M", 0, ts(1970, 2, 1), ts(1969, 12, 1)),
    ],
)
def test_calendar_arithmetic(text: str, start: int, after: int, before: int) -> None:
    d = Duration.parse(text, "f")
    assert d.after(start) == after
    assert d.before(start) == before


def test_calendar_arithmetic_agrees_with_datetime() -> None:
    """The hand-rolled civil-date conversion (no year-9999 overflow) matches :mod:`datetime`
    from year 1 to 9999."""
    month, day = Duration(months=1), Duration(days=1)
    for n in range(-719_162, 2_932_500, 997):
        t = n * DAY + 4321
        assert day.after(t) == t + DAY
        then = datetime.fromtimestamp(t, UTC)
        y, m = (then.year + 1, 1) if then.month == 12 else (then.year, then.month + 1)
        expected = then.replace(year=y, month=m, day=min(then.day, calendar.monthrange(y, m)[1]))
        assert month.after(t) == int(expected.timestamp())
        assert month.before(int(expected.timestamp())) <= t


def test_calendar_arithmetic_past_year_9999_does_not_overflow() -> None:
    assert Duration(years=1000).after(MAX_UNIX_TIME) > MAX_UNIX_TIME


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("P1Y", 365 * DAY),
        ("P1M", 30 * DAY),
        ("P2W", 14 * DAY),
        ("P1Y1M1DT1H1M1S", 396 * DAY + 3661),
        ("PT48H", 2 * DAY),
    ],
)
def test_approx_seconds(text: str, seconds: int) -> None:
    assert Duration.parse(text, "f").approx_seconds() == seconds


# --- PUT validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ([], "rotation policy"),
        ("P90D", "rotation policy"),
        (None, "rotation policy"),
        ({"lifetimeActions": {}}, "lifetimeActions"),
        ({"lifetimeActions": "Rotate"}, "lifetimeActions"),
        ({"lifetimeActions": [None]}, "lifetimeActions[0]"),
        ({"lifetimeActions": ["Rotate"]}, "lifetimeActions[0]"),
        ({"lifetimeActions": [{"trigger": {"timeAfterCreate": "P90D"}}]}, "[0].action.type"),
        (
            {"lifetimeActions": [{"trigger": {"timeAfterCreate": "P90D"}, "action": "Rotate"}]},
            "lifetimeActions[0].action.type",
        ),
        (
            {"lifetimeActions": [{"trigger": {"timeAfterCreate": "P90D"}, "action": {}}]},
            "lifetimeActions[0].action.type",
        ),
        (
            {
                "lifetimeActions": [
                    {"trigger": {"timeAfterCreate": "P90D"}, "action": {"type": "Delete"}}
                ]
            },
            "lifetimeActions[0].action.type",
        ),
        (
            {"lifetimeActions": [{"trigger": {"timeAfterCreate": "P90D"}, "action": {"type": 1}}]},
            "lifetimeActions[0].action.type",
        ),
        ({"lifetimeActions": [{"action": {"type": "Rotate"}}]}, "lifetimeActions[0].trigger"),
        (
            {"lifetimeActions": [{"trigger": "P90D", "action": {"type": "Rotate"}}]},
            "lifetimeActions[0].trigger",
        ),
        (
            {"lifetimeActions": [{"trigger": {}, "action": {"type": "Rotate"}}]},
            "lifetimeActions[0].trigger",
        ),
        (
            {
                "lifetimeActions": [
                    {
                        "trigger": {"timeAfterCreate": "P90D", "timeBeforeExpiry": "P30D"},
                        "action": {"type": "Rotate"},
                    }
                ]
            },
            "lifetimeActions[0].trigger",
        ),
        (
            {"lifetimeActions": [rotate_after("90D")]},
            "lifetimeActions[0].trigger.timeAfterCreate",
        ),
        (
            {"lifetimeActions": [before_expiry("Rotate", "P-30D")]},
            "lifetimeActions[0].trigger.timeBeforeExpiry",
        ),
        (
            {"lifetimeActions": [before_expiry("Notify", "P1.5D")]},
            "lifetimeActions[0].trigger.timeBeforeExpiry",
        ),
        (
            {"lifetimeActions": [rotate_after("P6D")]},
            "lifetimeActions[0].trigger.timeAfterCreate",
        ),
        (
            {"lifetimeActions": [rotate_after("PT167H")]},
            "lifetimeActions[0].trigger.timeAfterCreate",
        ),
        (
            {"lifetimeActions": [before_expiry("Rotate", "P6D")]},
            "lifetimeActions[0].trigger.timeBeforeExpiry",
        ),
        (
            {"lifetimeActions": [before_expiry("Notify", "P6DT23H")]},
            "lifetimeActions[0].trigger.timeBeforeExpiry",
        ),
        (
            {
                "lifetimeActions": [
                    {"trigger": {"timeAfterCreate": "P30D"}, "action": {"type": "Notify"}}
                ]
            },
            "lifetimeActions[0].trigger.timeAfterCreate",
        ),
        (
            {"lifetimeActions": [rotate_after("P90D"), before_expiry("Rotate", "P30D")]},
            "lifetimeActions[1].action.type",
        ),
        (
            {
                "lifetimeActions": [
                    rotate_after("P90D"),
                    before_expiry("Notify", "P30D"),
                    before_expiry("notify", "P10D"),
                ]
            },
            "lifetimeActions[2].action.type",
        ),
        ({"attributes": []}, "attributes"),
        ({"attributes": "P1Y"}, "attributes"),
        ({"attributes": {"expiryTime": "P27D"}}, "attributes.expiryTime"),
        ({"attributes": {"expiryTime": "P3W"}}, "attributes.expiryTime"),
        ({"attributes": {"expiryTime": "1 year"}}, "attributes.expiryTime"),
        ({"attributes": {"expiryTime": 365}}, "attributes.expiryTime"),
        ({"attributes": {"expiryTime": "P0D"}}, "attributes.expiryTime"),
        (
            {"lifetimeActions": [rotate_after("P84D")], "attributes": {"expiryTime": "P90D"}},
            "lifetimeActions[0].trigger.timeAfterCreate",
        ),
        (
            {"lifetimeActions": [rotate_after("P1Y")], "attributes": {"expiryTime": "P1Y"}},
            "lifetimeActions[0].trigger.timeAfterCreate",
        ),
        (
            {
                "lifetimeActions": [rotate_after("P23D"), before_expiry("Notify", "P25D")],
                "attributes": {"expiryTime": "P30D"},
            },
            "lifetimeActions[1].trigger.timeBeforeExpiry",
        ),
        (
            {
                "lifetimeActions": [before_expiry("Rotate", "P2M")],
                "attributes": {"expiryTime": "P60D"},
            },
            "lifetimeActions[0].trigger.timeBeforeExpiry",
        ),
    ],
)
def test_put_errors_name_their_field(doc: Any, field: str) -> None:
    with pytest.raises(BadParameter) as info:
        RotationPolicy.from_request(doc, 1000, None)
    assert field in info.value.message
    assert info.value.code == "BadParameter"


@pytest.mark.parametrize(
    "doc",
    [
        {"lifetimeActions": [], "attributes": {}},
        {},
        {"lifetimeActions": None, "attributes": None},
        {"lifetimeActions": [], "attributes": {"expiryTime": None}},
    ],
)
def test_empty_policy_is_valid_and_has_no_actions(doc: dict[str, Any]) -> None:
    policy = RotationPolicy.from_request(doc, 1000, None)
    assert policy == RotationPolicy((), None, 1000, 1000)
    key = KeyTimes(created=0, expires=10 * DAY, version="a" * 32)
    assert next_due(policy, key, notified_version=None) is None
    assert due_now(policy, key, 10**9, notified_version=None) == []


@pytest.mark.parametrize(
    ("actions", "expiry"),
    [
        ([rotate_after("P83D")], "P90D"),
        ([rotate_after("P358D")], "P1Y"),
        ([rotate_after("P11M")], "P1Y"),
        ([before_expiry("Rotate", "P21D")], "P28D"),
        ([before_expiry("Rotate", "P7D"), before_expiry("Notify", "P21D")], "P4W"),
        ([rotate_after("P7D")], None),
        ([before_expiry("Notify", "P7D")], None),
        ([before_expiry("Notify", "P1Y")], None),
        ([rotate_after("PT168H")], None),
    ],
)
def test_boundaries_are_accepted(actions: list[dict[str, Any]], expiry: str | None) -> None:
    put(actions, expiry)


def test_action_type_is_case_insensitive_and_stored_canonical() -> None:
    policy = put(
        [
            {"trigger": {"timeAfterCreate": "P90D"}, "action": {"type": "rotate"}},
            {"trigger": {"timeBeforeExpiry": "P30D"}, "action": {"type": "NOTIFY"}},
        ]
    )
    assert [a.action for a in policy.actions] == ["Rotate", "Notify"]


def test_default_notify_is_added_to_a_lone_rotate_with_an_expiry() -> None:
    policy = put([rotate_after("P60D")], "P90D")
    assert policy.actions == (
        LifetimeAction("Rotate", time_after_create=Duration(days=60)),
        LifetimeAction("Notify", time_before_expiry=Duration(days=30)),
    )
    assert policy.to_response(POLICY_ID)["lifetimeActions"] == [
        {"trigger": {"timeAfterCreate": "P60D"}, "action": {"type": "Rotate"}},
        {"trigger": {"timeBeforeExpiry": "P30D"}, "action": {"type": "Notify"}},
    ]


@pytest.mark.parametrize(
    ("actions", "expiry"),
    [
        ([rotate_after("P60D")], None),  # no expiryTime
        ([rotate_after("P60D"), before_expiry("Notify", "P10D")], "P90D"),  # Notify given
        ([before_expiry("Notify", "P10D")], "P90D"),  # no Rotate
        ([], "P90D"),  # no actions at all
        ([rotate_after("P21D")], "P36D"),  # P30D would break "at most expiryTime - 7 days"
    ],
)
def test_default_notify_is_not_added(actions: list[dict[str, Any]], expiry: str | None) -> None:
    policy = put(actions, expiry)
    assert len(policy.actions) == len(actions)


def test_created_is_kept_updated_moves_and_read_only_input_is_ignored() -> None:
    body = {
        "lifetimeActions": [rotate_after("P90D")],
        "attributes": {"expiryTime": "P2Y", "created": 5, "updated": 6, "enabled": False},
        "id": "https://elsewhere/keys/x/rotationpolicy",
        "somethingNew": {"x": 1},
    }
    first = RotationPolicy.from_request(body, 1000, None)
    assert (first.created, first.updated) == (1000, 1000)
    second = RotationPolicy.from_request(body, 2000, first)
    assert (second.created, second.updated) == (1000, 2000)
    assert second.actions == first.actions and second.expiry_time == Duration(years=2)
    # A previous record without created (should not happen) counts as a new policy.
    third = RotationPolicy.from_request(body, 3000, RotationPolicy())
    assert (third.created, third.updated) == (3000, 3000)


# --- storage and wire forms -------------------------------------------------------------------

NOTE_EXAMPLE: dict[str, Any] = {
    "id": "https://v.kv.example/keys/k1/rotationpolicy",
    "lifetimeActions": [
        {"trigger": {"timeAfterCreate": "P90D"}, "action": {"type": "Rotate"}},
        {"trigger": {"timeBeforeExpiry": "P30D"}, "action": {"type": "Notify"}},
    ],
    "attributes": {"expiryTime": "P2Y", "created": 1482188947, "updated": 1482188948},
}


def test_wire_shape_matches_the_real_service() -> None:
    sdk_body = {
        "lifetimeActions": [
            {"action": {"type": "Rotate"}, "trigger": {"timeAfterCreate": "P90D"}},
            {"action": {"type": "Notify"}, "trigger": {"timeBeforeExpiry": "P30D"}},
        ],
        "attributes": {"expiryTime": "P2Y"},
    }
    first = RotationPolicy.from_request(sdk_body, 1482188947, None)
    policy = RotationPolicy.from_request(sdk_body, 1482188948, first)
    assert policy.to_response(NOTE_EXAMPLE["id"]) == NOTE_EXAMPLE


@pytest.mark.parametrize(
    "policy",
    [
        RotationPolicy(),
        put([], None),
        put([rotate_after("P90D"), before_expiry("Notify", "P30D")], "P2Y"),
        put([before_expiry("Rotate", "P2W")], "PT2160H"),
        put([rotate_after("PT14400M"), before_expiry("Notify", "P1M")], "P1Y10D"),
        RotationPolicy((LifetimeAction("Rotate", Duration(days=90)),), Duration(years=1), 1, 2),
    ],
)
def test_doc_round_trip(policy: RotationPolicy) -> None:
    doc = json.loads(json.dumps(policy.to_doc()))
    again = RotationPolicy.from_doc(doc)
    assert again == policy
    assert again.to_response(POLICY_ID) == policy.to_response(POLICY_ID)


@pytest.mark.parametrize(
    ("actions", "expiry"),
    [
        ([], None),
        ([rotate_after("P60D")], "P90D"),
        ([rotate_after("P90D"), before_expiry("Notify", "P30D")], "P2Y"),
        ([before_expiry("Rotate", "P2W")], None),
    ],
)
def test_get_answer_fed_back_as_put_body_is_the_same_policy(
    actions: list[dict[str, Any]], expiry: str | None
) -> None:
    """What ``az keyvault key rotation-policy update`` does with an edited ``show`` output."""
    policy = put(actions, expiry, now=10)
    again = RotationPolicy.from_request(policy.to_response(POLICY_ID), 20, policy)
    assert again == RotationPolicy(policy.actions, policy.expiry_time, 10, 20)


def test_durations_read_back_as_written() -> None:
    policy = put([rotate_after("P2W"), before_expiry("Notify", "PT240H")], "P0Y1M")
    back = RotationPolicy.from_doc(json.loads(json.dumps(policy.to_doc())))
    wire = back.to_response(POLICY_ID)
    assert wire["lifetimeActions"][0]["trigger"] == {"timeAfterCreate": "P2W"}
    assert wire["lifetimeActions"][1]["trigger"] == {"timeBeforeExpiry": "PT240H"}
    assert wire["attributes"]["expiryTime"] == "P1M"


def test_response_leaves_out_absent_attributes() -> None:
    assert RotationPolicy().to_response(POLICY_ID) == {
        "id": POLICY_ID,
        "lifetimeActions": [],
        "attributes": {},
    }


def test_empty_response_is_what_the_real_service_answered() -> None:
    assert empty_response(POLICY_ID) == {
        "id": POLICY_ID,
        "lifetimeActions": None,
        "attributes": None,
    }


GOOD_DOC: dict[str, Any] = {
    "actions": [{"type": "Rotate", "timeAfterCreate": "P90D"}],
    "expiryTime": "P2Y",
    "created": 1,
    "updated": 2,
}


@pytest.mark.parametrize(
    "doc",
    [
        None,
        [],
        "policy",
        {},
        {**GOOD_DOC, "actions": None},
        {**GOOD_DOC, "actions": ["Rotate"]},
        {**GOOD_DOC, "actions": [{"timeAfterCreate": "P90D"}]},
        {**GOOD_DOC, "actions": [{"type": "Delete", "timeAfterCreate": "P90D"}]},
        {**GOOD_DOC, "actions": [{"type": "rotate", "timeAfterCreate": "P90D"}]},
        {**GOOD_DOC, "actions": [{"type": "Rotate"}]},
        {
            **GOOD_DOC,
            "actions": [{"type": "Rotate", "timeAfterCreate": "P9D", "timeBeforeExpiry": "P9D"}],
        },
        {**GOOD_DOC, "actions": [{"type": "Notify", "timeAfterCreate": "P90D"}]},
        {**GOOD_DOC, "actions": [{"type": "Rotate", "timeAfterCreate": "90 days"}]},
        {**GOOD_DOC, "actions": [{"type": "Rotate", "timeAfterCreate": 90}]},
        {**GOOD_DOC, "expiryTime": "forever"},
        {**GOOD_DOC, "created": "yesterday"},
        {**GOOD_DOC, "updated": True},
    ],
)
def test_malformed_storage_is_an_integrity_error(doc: Any) -> None:
    assert RotationPolicy.from_doc(GOOD_DOC).expiry_time == Duration(years=2)
    with pytest.raises(IntegrityError):
        RotationPolicy.from_doc(doc)


# --- schedule ---------------------------------------------------------------------------------

V1, V2 = "1" * 32, "2" * 32
T0 = ts(2024, 1, 31, 12)


def test_time_after_create_rotates() -> None:
    policy = put([rotate_after("P1M")])
    key = KeyTimes(created=T0, expires=None, version=V1)
    due = ts(2024, 2, 29, 12)
    assert next_due(policy, key, notified_version=None) == Due("Rotate", due)
    assert due_now(policy, key, due - 1, notified_version=None) == []
    assert due_now(policy, key, due, notified_version=None) == [Due("Rotate", due)]
    assert due_now(policy, key, due + 400 * DAY, notified_version=None) == [Due("Rotate", due)]


def test_time_before_expiry_rotates() -> None:
    policy = put([before_expiry("Rotate", "P30D")])  # no expiryTime: no default Notify
    key = KeyTimes(created=T0, expires=T0 + 90 * DAY, version=V1)
    assert next_due(policy, key, notified_version=None) == Due("Rotate", T0 + 60 * DAY)
    assert due_now(policy, key, T0 + 60 * DAY - 1, notified_version=None) == []
    assert due_now(policy, key, T0 + 60 * DAY, notified_version=None) == [
        Due("Rotate", T0 + 60 * DAY)
    ]


def test_notify_before_expiry() -> None:
    policy = put([before_expiry("Notify", "P10D")])
    key = KeyTimes(created=T0, expires=T0 + 40 * DAY, version=V1)
    assert next_due(policy, key, notified_version=None) == Due("Notify", T0 + 30 * DAY)
    assert due_now(policy, key, T0 + 30 * DAY, notified_version=None) == [
        Due("Notify", T0 + 30 * DAY)
    ]


def test_notify_comes_before_rotate_at_the_same_instant() -> None:
    policy = put([before_expiry("Rotate", "P30D"), before_expiry("Notify", "P30D")], "P90D")
    key = KeyTimes(created=T0, expires=T0 + 90 * DAY, version=V1)
    at = T0 + 60 * DAY
    assert next_due(policy, key, notified_version=None) == Due("Notify", at)
    assert due_now(policy, key, at, notified_version=None) == [Due("Notify", at), Due("Rotate", at)]
    # The caller notified and recorded it; asking again gives the Rotate.
    assert next_due(policy, key, notified_version=V1) == Due("Rotate", at)
    assert due_now(policy, key, at, notified_version=V1) == [Due("Rotate", at)]


def test_due_now_lists_notify_first_even_when_rotate_was_due_earlier() -> None:
    """After an outage both are overdue: notify about the version the rotation replaces."""
    policy = put([rotate_after("P20D"), before_expiry("Notify", "P30D")])
    key = KeyTimes(created=T0, expires=T0 + 40 * DAY, version=V1)
    assert next_due(policy, key, notified_version=None) == Due("Notify", T0 + 10 * DAY)
    later = put([rotate_after("P7D"), before_expiry("Notify", "P30D")])
    assert next_due(later, key, notified_version=None) == Due("Rotate", T0 + 7 * DAY)
    assert due_now(later, key, T0 + 50 * DAY, notified_version=None) == [
        Due("Notify", T0 + 10 * DAY),
        Due("Rotate", T0 + 7 * DAY),
    ]


def test_notified_version_suppresses_repeats_until_the_version_changes() -> None:
    policy = put([before_expiry("Notify", "P10D")])
    key = KeyTimes(created=T0, expires=T0 + 40 * DAY, version=V1)
    now = T0 + 35 * DAY
    assert due_now(policy, key, now, notified_version=V1) == []
    assert next_due(policy, key, notified_version=V1) is None
    # Someone set a new version by hand: it is notified about in its turn.
    key2 = KeyTimes(created=now, expires=now + 20 * DAY, version=V2)
    assert next_due(policy, key2, notified_version=V1) == Due("Notify", now + 10 * DAY)
    assert next_due(policy, key2, notified_version=V2) is None


@pytest.mark.parametrize("kind", ["Rotate", "Notify"])
def test_without_exp_time_before_expiry_never_fires(kind: str) -> None:
    policy = put([before_expiry(kind, "P30D")])
    key = KeyTimes(created=T0, expires=None, version=V1)
    assert next_due(policy, key, notified_version=None) is None
    assert due_now(policy, key, MAX_UNIX_TIME, notified_version=None) == []


def test_after_a_rotation_the_next_due_moves_forward() -> None:
    policy = put([rotate_after("P60D")], "P90D")  # gains Notify P30D before expiry
    key = KeyTimes(created=T0, expires=T0 + 90 * DAY, version=V1)
    now = T0 + 60 * DAY
    assert due_now(policy, key, now, notified_version=None) == [
        Due("Notify", T0 + 60 * DAY),
        Due("Rotate", T0 + 60 * DAY),
    ]
    # The caller notifies, then rotates: the new version is created now with exp from the policy.
    exp = expiry_for_new_version(policy, now)
    assert exp == now + 90 * DAY
    rotated = KeyTimes(created=now, expires=exp, version=V2)
    assert due_now(policy, rotated, now, notified_version=V1) == []
    assert next_due(policy, rotated, notified_version=V1) == Due("Notify", now + 60 * DAY)
    assert next_due(policy, rotated, notified_version=V2) == Due("Rotate", now + 60 * DAY)


def test_before_expiry_rotation_moves_forward_with_the_new_exp() -> None:
    policy = put([before_expiry("Rotate", "P7D")], "P1M")
    key = KeyTimes(created=T0, expires=ts(2024, 2, 29, 12), version=V1)
    at = ts(2024, 2, 22, 12)
    assert due_now(policy, key, at, notified_version=None) == [Due("Rotate", at)]
    exp = expiry_for_new_version(policy, at)
    assert exp == ts(2024, 3, 22, 12)
    rotated = KeyTimes(created=at, expires=exp, version=V2)
    assert next_due(policy, rotated, notified_version=None) == Due("Rotate", ts(2024, 3, 15, 12))


def test_a_restart_recomputes_the_same_answer_from_stored_state() -> None:
    policy = put([rotate_after("P3M"), before_expiry("Notify", "P2W")], "P1Y")
    key = KeyTimes(created=T0, expires=T0 + 200 * DAY, version=V1)
    answers = []
    for _ in range(2):  # two "processes": everything rebuilt from the stored forms
        stored = json.loads(json.dumps(policy.to_doc()))
        reloaded = RotationPolicy.from_doc(stored)
        state = KeyTimes(key.created, key.expires, key.version)
        answers.append(
            (
                next_due(reloaded, state, notified_version=None),
                due_now(reloaded, state, ts(2024, 6, 1), notified_version=None),
            )
        )
    assert answers[0] == answers[1]
    assert answers[0] == (
        Due("Rotate", ts(2024, 4, 30, 12)),
        [Due("Rotate", ts(2024, 4, 30, 12))],
    )


@pytest.mark.parametrize(
    ("expiry", "created", "expected"),
    [
        (None, T0, None),
        ("P90D", T0, T0 + 90 * DAY),
        ("P1M", T0, ts(2024, 2, 29, 12)),
        ("P2Y", ts(2024, 2, 29), ts(2026, 2, 28)),
        ("P1000Y", MAX_UNIX_TIME - 10 * 365 * DAY, MAX_UNIX_TIME),
    ],
)
def test_expiry_for_new_version(expiry: str | None, created: int, expected: int | None) -> None:
    assert expiry_for_new_version(put([], expiry), created) == expected
