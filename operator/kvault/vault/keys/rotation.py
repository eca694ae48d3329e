"""Key rotation policies (``GET/PUT /keys/{name}/rotationpolicy``): validation and schedule.

Pure logic: no I/O and no clock of its own. The scheduler in the active replica passes ``now`` and
the stored state (the current version's times, the policy record, the version it last notified
about), so every due time is recomputed from what survives a restart, never kept in memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from kvault.errors import BadParameter, IntegrityError
from kvault.vault.model import DAY
from kvault.vault.names import MAX_UNIX_TIME

ROTATE = "Rotate"
NOTIFY = "Notify"
#: Canonical spelling by lower-case input: Azure matches action types case-insensitively.
ACTION_TYPES = {ROTATE.lower(): ROTATE, NOTIFY.lower(): NOTIFY}
#: The scheduler runs Notify before Rotate: rotating first would leave nothing to notify about.
_ORDER = {NOTIFY: 0, ROTATE: 1}

MIN_EXPIRY_TIME = 28 * DAY
MIN_TRIGGER = 7 * DAY
#: A trigger must leave at least this much of the ``expiryTime`` a new version gets.
EXPIRY_MARGIN = 7 * DAY
#: Longer durations are refused: nothing after year 9999 can be a timestamp clients accept.
MAX_DURATION_YEARS = 1000
#: What the real service adds to a PUT holding only a Rotate action and an expiryTime.
DEFAULT_NOTIFY_BEFORE_EXPIRY = "P30D"

AFTER_CREATE = "timeAfterCreate"
BEFORE_EXPIRY = "timeBeforeExpiry"

_DURATION = re.compile(
    r"P(?:([0-9]{1,12})Y)?(?:([0-9]{1,12})M)?(?:([0-9]{1,12})W)?(?:([0-9]{1,12})D)?"
    r"(?:T(?:([0-9]{1,12})H)?(?:([0-9]{1,12})M)?(?:([0-9]{1,12})S)?)?"
)


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).

    Used instead of :mod:`datetime` so that arithmetic never overflows at year 9999."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def _civil_from_days(z: int) -> tuple[int, int, int]:
    """The (year, month, day) of a day count since 1970-01-01; inverse of the above."""
    z += 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (m <= 2), m, d


def _days_in_month(y: int, m: int) -> int:
    if m == 2:
        return 29 if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0) else 28
    return 30 if m in (4, 6, 9, 11) else 31


def _add_months(t: int, months: int) -> int:
    """``t`` moved by whole months on its UTC date, the day clamped (Jan 31 + 1 month = Feb 28/29)
    and the time of day kept."""
    if months == 0:
        return t
    days, secs = divmod(t, DAY)
    y, m, d = _civil_from_days(days)
    y2, m0 = divmod(y * 12 + m - 1 + months, 12)
    m2 = m0 + 1
    return _days_from_civil(y2, m2, min(d, _days_in_month(y2, m2))) * DAY + secs


@dataclass(frozen=True, slots=True)
class Duration:
    """An ISO 8601 duration as Azure takes them (``P1Y``, ``P3M``, ``P90D``, ``P2W``, ``PT48H``,
    ``P1Y10D``, ``PT1H30M``). Years and months stay calendar units; weeks become days; hours,
    minutes and seconds become exact seconds."""

    years: int = 0
    months: int = 0
    days: int = 0
    seconds: int = 0
    #: The text it was parsed from when that is no longer than the canonical form (``P2W``,
    #: ``PT90M``), so a policy reads back as it was written; "" otherwise. Not part of equality.
    source: str = field(default="", compare=False, repr=False)

    @classmethod
    def parse(cls, text: Any, field: str) -> Duration:
        """Parse ``text``; :class:`BadParameter` naming ``field`` if it is not a positive
        whole-unit duration (fractions, signs and zero are refused)."""
        example = f"{field} must be an ISO 8601 duration such as P90D"
        if not isinstance(text, str):
            raise BadParameter(f"{example}, got {_show(text)}")
        upper = text.upper()
        match = _DURATION.fullmatch(upper)
        if match is None or upper in ("P", "PT") or upper.endswith("T"):
            raise BadParameter(f"{example}, got {_show(text)}")
        y, mo, w, d, h, mi, s = (int(g) if g else 0 for g in match.groups())
        built = cls(years=y, months=mo, days=7 * w + d, seconds=3600 * h + 60 * mi + s)
        if built.approx_seconds() <= 0:
            raise BadParameter(f"{field} must be longer than zero, got {_show(text)}")
        if built.approx_seconds() > MAX_DURATION_YEARS * 365 * DAY:
            raise BadParameter(
                f"{field} must be at most {MAX_DURATION_YEARS} years, got {_show(text)}"
            )
        canonical = built.canonical()
        if len(upper) <= len(canonical) and upper != canonical:
            return cls(built.years, built.months, built.days, built.seconds, source=upper)
        return built

    def canonical(self) -> str:
        """``P{y}Y{m}M{d}DT{h}H{m}M{s}S`` with zero parts left out (``PT0S`` for nothing)."""
        date = "".join(
            f"{n}{unit}"
            for n, unit in ((self.years, "Y"), (self.months, "M"), (self.days, "D"))
            if n
        )
        h, rest = divmod(self.seconds, 3600)
        mi, s = divmod(rest, 60)
        time = "".join(f"{n}{unit}" for n, unit in ((h, "H"), (mi, "M"), (s, "S")) if n)
        if not date and not time:
            return "PT0S"
        return f"P{date}" + (f"T{time}" if time else "")

    def __str__(self) -> str:
        return self.source or self.canonical()

    def after(self, t: int) -> int:
        """``t`` plus this duration: years and months on the UTC calendar first (day clamped),
        then days and seconds exactly, as ISO 8601 / XML Schema add them."""
        return _add_months(t, 12 * self.years + self.months) + self.days * DAY + self.seconds

    def before(self, t: int) -> int:
        """``t`` minus this duration (months first, then days and seconds). Not an exact inverse
        of :meth:`after` across month ends: Mar 31 - P1M = Feb 28, Feb 28 + P1M = Mar 28."""
        return _add_months(t, -(12 * self.years + self.months)) - self.days * DAY - self.seconds

    def approx_seconds(self) -> int:
        """Length with a month of 30 days and a year of 365: only for minimum/maximum checks."""
        return ((self.years * 365 + self.months * 30 + self.days) * DAY) + self.seconds


def _show(value: Any) -> str:
    """A short repr of client input for an error message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True, slots=True)
class LifetimeAction:
    """One action of a policy and its trigger (exactly one of the two durations is set)."""

    action: str
    time_after_create: Duration | None = None
    time_before_expiry: Duration | None = None

    def trigger(self) -> dict[str, str]:
        if self.time_after_create is not None:
            return {AFTER_CREATE: str(self.time_after_create)}
        if self.time_before_expiry is not None:
            return {BEFORE_EXPIRY: str(self.time_before_expiry)}
        return {}


@dataclass(frozen=True, slots=True)
class RotationPolicy:
    """A key's rotation policy as stored. An empty ``actions`` tuple is a valid policy (no
    automatic rotation), distinct from a key that never had one (:func:`empty_response`)."""

    actions: tuple[LifetimeAction, ...] = ()
    expiry_time: Duration | None = None
    created: int | None = None
    updated: int | None = None

    @classmethod
    def from_request(cls, doc: Any, now: int, previous: RotationPolicy | None) -> RotationPolicy:
        """Validate a PUT body with Azure's rules; messages name the field path.

        Like the real service, a policy holding only a Rotate action and an ``expiryTime`` gets a
        ``Notify`` action ``timeBeforeExpiry: P30D`` added (seen in a real-service recording). It
        is left out when ``expiryTime`` is under 37 days, where P30D would break the service's own
        "at most expiryTime minus 7 days" rule. ``attributes.created/updated`` are read-only and
        ignored, as are unknown fields; ``created`` is kept from ``previous``."""
        if not isinstance(doc, dict):
            raise BadParameter("the rotation policy must be a JSON object")
        raw_actions = doc.get("lifetimeActions")
        if raw_actions is None:
            raw_actions = []
        if not isinstance(raw_actions, list):
            raise BadParameter("lifetimeActions must be an array of lifetime actions")
        actions = [
            _parse_action(item, f"lifetimeActions[{i}]") for i, item in enumerate(raw_actions)
        ]
        for kind in (ROTATE, NOTIFY):
            indexes = [i for i, a in enumerate(actions) if a.action == kind]
            if len(indexes) > 1:
                raise BadParameter(
                    f"lifetimeActions[{indexes[1]}].action.type: a policy has at most one "
                    f"{kind} action"
                )

        attributes = doc.get("attributes")
        if attributes is None:
            attributes = {}
        if not isinstance(attributes, dict):
            raise BadParameter("attributes must be an object")
        expiry: Duration | None = None
        if attributes.get("expiryTime") is not None:
            expiry = Duration.parse(attributes["expiryTime"], "attributes.expiryTime")
            if expiry.approx_seconds() < MIN_EXPIRY_TIME:
                raise BadParameter(f"attributes.expiryTime must be at least P28D, got {expiry}")
            limit = expiry.approx_seconds() - EXPIRY_MARGIN
            for i, a in enumerate(actions):
                for key, d in (
                    (AFTER_CREATE, a.time_after_create),
                    (BEFORE_EXPIRY, a.time_before_expiry),
                ):
                    if d is not None and d.approx_seconds() > limit:
                        raise BadParameter(
                            f"lifetimeActions[{i}].trigger.{key} must be at most "
                            f"attributes.expiryTime ({expiry}) minus 7 days, got {d}"
                        )
            default = Duration.parse(DEFAULT_NOTIFY_BEFORE_EXPIRY, "default Notify")
            if (
                len(actions) == 1
                and actions[0].action == ROTATE
                and default.approx_seconds() <= limit
            ):
                actions.append(LifetimeAction(NOTIFY, time_before_expiry=default))

        created = previous.created if previous is not None and previous.created is not None else now
        return cls(tuple(actions), expiry, created, now)

    def to_response(self, policy_id: str) -> dict[str, Any]:
        """The wire body (GET and PUT answers); absent values are left out, as Azure does."""
        attributes: dict[str, Any] = {}
        if self.expiry_time is not None:
            attributes["expiryTime"] = str(self.expiry_time)
        if self.created is not None:
            attributes["created"] = self.created
        if self.updated is not None:
            attributes["updated"] = self.updated
        return {
            "id": policy_id,
            "lifetimeActions": [
                {"trigger": a.trigger(), "action": {"type": a.action}} for a in self.actions
            ],
            "attributes": attributes,
        }

    def to_doc(self) -> dict[str, Any]:
        """The storage form (JSON-able); durations as text so they read back as written."""
        return {
            "actions": [{"type": a.action, **a.trigger()} for a in self.actions],
            "expiryTime": None if self.expiry_time is None else str(self.expiry_time),
            "created": self.created,
            "updated": self.updated,
        }

    @classmethod
    def from_doc(cls, doc: Any) -> RotationPolicy:
        """Read :meth:`to_doc` back; :class:`IntegrityError` if it is malformed. Only the shape is
        checked: the PUT rules were applied when it was written (and may change later)."""
        try:
            return cls._from_doc(doc)
        except (BadParameter, KeyError, TypeError, ValueError, AttributeError):
            raise IntegrityError("stored rotation policy is malformed") from None

    @classmethod
    def _from_doc(cls, doc: Any) -> RotationPolicy:
        if not isinstance(doc, dict) or not isinstance(doc["actions"], list):
            raise ValueError("not a policy")
        actions = []
        for item in doc["actions"]:
            action = item["type"]
            triggers = {k: v for k, v in item.items() if k in (AFTER_CREATE, BEFORE_EXPIRY)}
            if action not in _ORDER or len(triggers) != 1:
                raise ValueError("bad action")
            ((key, text),) = triggers.items()
            if action == NOTIFY and key != BEFORE_EXPIRY:
                raise ValueError("bad notify")
            d = Duration.parse(text, key)
            actions.append(
                LifetimeAction(action, d, None)
                if key == AFTER_CREATE
                else LifetimeAction(action, None, d)
            )
        expiry_text = doc.get("expiryTime")
        expiry = None if expiry_text is None else Duration.parse(expiry_text, "expiryTime")
        created, updated = doc.get("created"), doc.get("updated")
        for t in (created, updated):
            if t is not None and (isinstance(t, bool) or not isinstance(t, int)):
                raise ValueError("bad time")
        return cls(tuple(actions), expiry, created, updated)


def _parse_action(item: Any, path: str) -> LifetimeAction:
    """One element of ``lifetimeActions``; ``path`` is its place for error messages."""
    if not isinstance(item, dict):
        raise BadParameter(f"{path} must be an object with a trigger and an action")
    action = item.get("action")
    kind = action.get("type") if isinstance(action, dict) else None
    if not isinstance(kind, str) or kind.lower() not in ACTION_TYPES:
        raise BadParameter(f"{path}.action.type must be Rotate or Notify, got {_show(kind)}")
    kind = ACTION_TYPES[kind.lower()]
    trigger = item.get("trigger")
    if not isinstance(trigger, dict):
        raise BadParameter(
            f"{path}.trigger must be an object with timeAfterCreate or timeBeforeExpiry"
        )
    given = [k for k in (AFTER_CREATE, BEFORE_EXPIRY) if trigger.get(k) is not None]
    if len(given) != 1:
        raise BadParameter(
            f"{path}.trigger must have exactly one of timeAfterCreate and timeBeforeExpiry"
        )
    key = given[0]
    if kind == NOTIFY and key == AFTER_CREATE:
        raise BadParameter(
            f"{path}.trigger.timeAfterCreate is not allowed for a Notify action: "
            "use timeBeforeExpiry"
        )
    d = Duration.parse(trigger[key], f"{path}.trigger.{key}")
    if d.approx_seconds() < MIN_TRIGGER:
        raise BadParameter(f"{path}.trigger.{key} must be at least P7D, got {d}")
    if key == AFTER_CREATE:
        return LifetimeAction(kind, time_after_create=d)
    return LifetimeAction(kind, time_before_expiry=d)


def empty_response(policy_id: str) -> dict[str, Any]:
    """The GET body for a key that never had a policy: the real service answered 200 with null
    ``lifetimeActions`` and ``attributes``, which the SDK maps to an empty policy."""
    return {"id": policy_id, "lifetimeActions": None, "attributes": None}


@dataclass(frozen=True, slots=True)
class KeyTimes:
    """The state of one key as the scheduler sees it (its current version)."""

    created: int
    expires: int | None
    version: str


@dataclass(frozen=True, slots=True)
class Due:
    """An action and the instant it became (or becomes) due."""

    action: str
    at: int


def _pending(policy: RotationPolicy, key: KeyTimes, notified_version: str | None) -> list[Due]:
    """The earliest due time of each action type still pending for the current version,
    Notify first on a tie. Triggers before expiry need an ``exp``: without one they never fire."""
    earliest: dict[str, int] = {}
    for a in policy.actions:
        if a.action == NOTIFY and notified_version == key.version:
            continue
        if a.time_after_create is not None and a.action == ROTATE:
            at = a.time_after_create.after(key.created)
        elif a.time_before_expiry is not None and key.expires is not None:
            at = a.time_before_expiry.before(key.expires)
        else:
            continue
        earliest[a.action] = min(at, earliest.get(a.action, at))
    return sorted(
        (Due(kind, at) for kind, at in earliest.items()), key=lambda d: (d.at, _ORDER[d.action])
    )


def next_due(policy: RotationPolicy, key: KeyTimes, *, notified_version: str | None) -> Due | None:
    """The earliest pending action (possibly in the past: the scheduler was down), or ``None``.
    On a tie Notify comes first; the caller records ``notified_version`` and asks again."""
    pending = _pending(policy, key, notified_version)
    return pending[0] if pending else None


def due_now(
    policy: RotationPolicy, key: KeyTimes, now: int, *, notified_version: str | None
) -> list[Due]:
    """Every action due at ``now``, Notify before Rotate whatever their times (the notice is about
    the version a rotation replaces). At most one of each: once the caller rotates, the new
    version's ``created``/``exp`` move the next Rotate forward."""
    due = [d for d in _pending(policy, key, notified_version) if d.at <= now]
    return sorted(due, key=lambda d: _ORDER[d.action])


def expiry_for_new_version(policy: RotationPolicy, created: int) -> int | None:
    """The ``exp`` a version created by rotation gets: ``created + expiryTime``, capped at the
    last second of year 9999 (clients turn it into a datetime), or ``None`` without expiryTime."""
    if policy.expiry_time is None:
        return None
    return min(policy.expiry_time.after(created), MAX_UNIX_TIME)
