"""Many clients change one name at once (issue 12: finding 1, acceptance 2).

N threads, each with its own official SDK client, fire the same mutating operation on one
name at the same instant (a barrier releases them together), for every mutating operation of
secrets, keys and certificates, against a real ``kvault server --dev`` of this module's own.
Every storm must end as Azure answers the same calls one after the other: all sets, creates,
imports, rotations, updates and cancels succeed (each set, create, import and rotation with a
version of its own); of racing deletes, recovers, purges, restores, merges and deletes of an
operation, contacts or issuer exactly one succeeds and the others get the answer of a call
that came after it (404 for what is already gone, 409 for a restore over an existing name).
Never a 5xx. Then the state is checked as a user would (the versions
listed are the versions the successful sets returned), every request has one final audit
line with the outcome its client saw, and the server logged no error.

The default tier runs more than 1,000 operations; ``-m slow`` runs a larger version.
"""

from __future__ import annotations

import collections
import json
import random
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import pytest
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline import PipelineResponse
from azure.keyvault.certificates import (
    CertificateClient,
    CertificateContact,
    CertificatePolicy,
    KeyType,
)
from azure.keyvault.keys import JsonWebKey, KeyClient
from azure.keyvault.secrets import SecretClient
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kvault.api.errors import from_kvault
from kvault.errors import StorageConflict
from tests.api.certs_support import TestCA, csr_of
from tests.api.conftest import StaticCredential
from tests.fixtures.devserver import DevServer, start_dev_server, stop

T = TypeVar("T")
#: Threads per storm in the default tier, and in the slow one.
N = 8
N_SLOW = 24
#: The final audit lines of an operation (a change also has a ``committing`` line first).
COMMITTING = "committing"


# -- recording every response ------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One HTTP response as the client got it."""

    request_id: str
    method: str
    path: str
    status: int
    code: str = ""
    inner: str = ""


@dataclass(frozen=True)
class Result:
    """What one SDK call ended with: the status and error code of its request (not of the
    challenge before it), and the SDK's return value on success."""

    status: int
    code: str = ""
    inner: str = ""
    value: Any = None


class Recorder:
    """``raw_response_hook`` of every client: keeps every response, and the responses of the
    call running on this thread."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._local = threading.local()

    def __call__(self, response: PipelineResponse[Any, Any]) -> None:
        http = response.http_response
        code = inner = ""
        if http.status_code >= 400:
            try:
                error = json.loads(http.text())["error"]
                code = error.get("code") or ""
                inner = (error.get("innererror") or {}).get("code") or ""
            except (ValueError, KeyError, TypeError):
                code = "?"
        request = response.http_request
        seen = Seen(
            http.headers.get("x-ms-request-id", ""),
            request.method,
            request.url.split("?")[0],
            http.status_code,
            code,
            inner,
        )
        with self._lock:
            self.seen.append(seen)
        getattr(self._local, "calls", []).append(seen)

    def call(self, fn: Callable[[], Any]) -> Result:
        """Run one SDK call; its result is its first response after any challenge."""
        mine: list[Seen] = []
        self._local.calls = mine
        value: Any = None
        error: HttpResponseError | None = None
        try:
            value = fn()
        except HttpResponseError as exc:
            error = exc
        answered = [s for s in mine if s.status != 401]
        assert answered, f"no response to the call (error: {error})"
        first = answered[0]
        if first.status < 400 and error is not None:
            # Only a poller's follow-up read failed (a create's GET after a racing delete);
            # the operation itself is what this suite judges.
            value = None
        return Result(first.status, first.code, first.inner, value)


# -- clients per thread, storms ----------------------------------------------------------------


@dataclass
class Clients:
    secrets: SecretClient
    keys: KeyClient
    certificates: CertificateClient


@dataclass
class Lab:
    """The server, a recorder, and one worker thread with its own SDK clients per racer."""

    server: DevServer
    recorder: Recorder
    threads: int
    _clients: list[Clients] = field(default_factory=list)
    _pool: ThreadPoolExecutor | None = None
    #: How many lines the server had printed before this lab began.
    printed: int = 0

    def __post_init__(self) -> None:
        self.printed = len(self.server.output)
        env = self.server.env
        kwargs: dict[str, Any] = {
            "verify_challenge_resource": False,
            "connection_verify": env["KVAULT_CA_FILE"],
            "retry_total": 0,  # every response counts: the SDK must not hide a 5xx
            "raw_response_hook": self.recorder,
        }
        cred = StaticCredential(env["KVAULT_TOKEN"])
        url = env["KVAULT_ENDPOINT"]
        self._clients = [
            Clients(
                SecretClient(url, cred, **kwargs),
                KeyClient(url, cred, **kwargs),
                CertificateClient(url, cred, **kwargs),
            )
            for _ in range(self.threads)
        ]
        self._pool = ThreadPoolExecutor(self.threads)

    def one(self, op: Callable[[Clients], Any]) -> Result:
        return self.recorder.call(lambda: op(self._clients[0]))

    def race(self, work: Callable[[int, Clients], T]) -> list[T]:
        """``work(i, clients)`` on every racer's thread, released at the same instant."""
        assert self._pool is not None
        gate = threading.Barrier(self.threads)

        def run(i: int) -> T:
            gate.wait()
            return work(i, self._clients[i])

        return list(self._pool.map(run, range(self.threads)))

    def storm(self, op: Callable[[Clients], Any]) -> list[Result]:
        """``op`` by every racer at once."""
        return self.race(lambda _, clients: self.recorder.call(lambda: op(clients)))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
        for c in self._clients:
            c.secrets.close()
            c.keys.close()
            c.certificates.close()


def tally(results: list[Result]) -> dict[tuple[int, str], int]:
    return dict(collections.Counter((r.status, r.code) for r in results))


def all_ok(results: list[Result], status: int = 200) -> list[Any]:
    assert tally(results) == {(status, ""): len(results)}
    return [r.value for r in results]


def one_wins(results: list[Result], status: int, loser: tuple[int, str]) -> Any:
    """Exactly one call succeeded with ``status``; every other one got ``loser``."""
    assert tally(results) == {(status, ""): 1, loser: len(results) - 1}
    return next(r.value for r in results if r.status == status)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """A dev server of this module's own: its audit log and output are this suite's alone.
    Not throttled: this suite races clients, it does not measure rates."""
    server = start_dev_server(
        tmp_path_factory.mktemp("concurrency") / "data",
        *("--vault-rate-limit", "0", "--principal-rate-limit", "0"),
    )
    yield server
    stop(server)


@pytest.fixture
def lab(server: DevServer, request: pytest.FixtureRequest) -> Iterator[Lab]:
    threads = N_SLOW if request.node.get_closest_marker("slow") else N
    lab = Lab(server, Recorder(), threads)
    yield lab
    lab.close()


def check_answers_audit_and_log(lab: Lab) -> None:
    """No 5xx; every answered request has exactly one final audit line, whose outcome is what
    its client saw; the server printed no error or traceback meanwhile."""
    # Responses first, then the log: a response's audit line was written before it was sent
    # (a poller's request answered after this snapshot is not checked).
    seen = list(lab.recorder.seen)
    statuses = collections.Counter(s.status for s in seen)
    assert not [s for s in seen if s.status >= 500], statuses
    finals: dict[str, list[str]] = collections.defaultdict(list)
    for line in (lab.server.data_dir / "audit.log").read_text().splitlines():
        entry = json.loads(line)
        if entry["request_id"] and entry["outcome"] != COMMITTING:
            finals[entry["request_id"]].append(entry["outcome"])
    expected = {200: "ok", 201: "ok", 202: "ok", 204: "ok", 404: "NotFound", 409: "Conflict"}
    wrong = []
    for s in seen:
        if s.status == 401:
            continue  # the SDK's challenge request carries no token (finding 6 audits those)
        if finals.get(s.request_id) != [expected.get(s.status, f"HTTP {s.status}")]:
            wrong.append((s.method, s.path, s.status, s.code, finals.get(s.request_id)))
    assert not wrong, f"{len(wrong)} of {len(seen)} requests audited otherwise: {wrong[:10]}"
    printed = lab.server.output[lab.printed :]
    assert not [line for line in printed if "ERROR" in line or "Traceback" in line]


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# -- secrets -----------------------------------------------------------------------------------


def secrets_round(lab: Lab, n: str) -> int:
    """Every mutating secret operation as a storm on ``n``; returns how many calls ran."""
    calls = 0

    def storm(op: Callable[[SecretClient], Any]) -> list[Result]:
        nonlocal calls
        results = lab.storm(lambda c: op(c.secrets))
        calls += len(results)
        return results

    gone = (404, "SecretNotFound")
    made = {s.properties.version for s in all_ok(storm(lambda c: c.set_secret(n, "value")))}
    assert len(made) == lab.threads  # each set is a version of its own
    all_ok(storm(lambda c: c.update_secret_properties(n, tags={"round": "x"})))
    blob = all_ok(storm(lambda c: c.backup_secret(n)))[0]
    one_wins(storm(lambda c: c.begin_delete_secret(n).result()), 200, gone)
    one_wins(storm(lambda c: c.begin_recover_deleted_secret(n).result()), 200, gone)
    assert secret_versions(lab, n) == made
    one_wins(storm(lambda c: c.begin_delete_secret(n).result()), 200, gone)
    one_wins(storm(lambda c: c.purge_deleted_secret(n)), 204, gone)
    one_wins(storm(lambda c: c.restore_secret_backup(blob)), 200, (409, "Conflict"))
    assert secret_versions(lab, n) == made  # restored whole, once
    one_wins(storm(lambda c: c.begin_delete_secret(n).result()), 200, gone)
    one_wins(storm(lambda c: c.purge_deleted_secret(n)), 204, gone)
    after = lab.one(lambda c: c.secrets.get_deleted_secret(n))
    assert after.status == 404
    return calls


def secret_versions(lab: Lab, n: str) -> set[str]:
    listed = lab.one(lambda c: list(c.secrets.list_properties_of_secret_versions(n)))
    return {p.version for p in listed.value}


def secrets_mixed(lab: Lab, n: str, per_thread: int) -> int:
    """Every thread runs random secret operations on ``n`` (no purge): whatever interleaving
    happens, the versions at the end are exactly those the successful sets returned."""
    first = lab.one(lambda c: c.secrets.set_secret(n, "first"))
    made = {first.value.properties.version}
    ops: dict[str, Callable[[SecretClient], Any]] = {
        "set": lambda c: c.set_secret(n, "value"),
        "update": lambda c: c.update_secret_properties(n, content_type="text/plain"),
        "delete": lambda c: c.begin_delete_secret(n).result(),
        "recover": lambda c: c.begin_recover_deleted_secret(n).result(),
        "backup": lambda c: c.backup_secret(n),
        "get": lambda c: c.get_secret(n),
    }
    allowed = {
        "set": {(200, ""), (409, "Conflict")},  # 409: deleted but recoverable
        "update": {(200, ""), (404, "SecretNotFound")},
        "delete": {(200, ""), (404, "SecretNotFound")},
        "recover": {(200, ""), (404, "SecretNotFound")},
        "backup": {(200, ""), (404, "SecretNotFound")},
        "get": {(200, ""), (404, "SecretNotFound")},
    }

    def run(seed: int, clients: Clients) -> list[tuple[str, Result]]:
        rnd = random.Random(seed)
        out = []
        for _ in range(per_thread):
            op = rnd.choice(sorted(ops))
            out.append((op, lab.recorder.call(partial(ops[op], clients.secrets))))
        return out

    done = [r for batch in lab.race(run) for r in batch]
    for op, result in done:
        assert (result.status, result.code) in allowed[op], (op, result)
        if op == "set" and result.status == 409:
            assert result.inner == "ObjectIsDeletedButRecoverable"
        if op == "set" and result.status == 200:
            made.add(result.value.properties.version)
    if lab.one(lambda c: c.secrets.get_secret(n)).status == 404:
        recovered = lab.one(lambda c: c.secrets.begin_recover_deleted_secret(n).result())
        assert recovered.status == 200
    assert secret_versions(lab, n) == made
    return len(done)


# -- keys --------------------------------------------------------------------------------------


def ec_jwk() -> JsonWebKey:
    numbers = ec.generate_private_key(ec.SECP256R1()).private_numbers()
    return JsonWebKey(
        kty="EC",
        crv="P-256",
        x=numbers.public_numbers.x.to_bytes(32, "big"),
        y=numbers.public_numbers.y.to_bytes(32, "big"),
        d=numbers.private_value.to_bytes(32, "big"),
    )


def keys_round(lab: Lab, n: str) -> int:
    calls = 0

    def storm(op: Callable[[KeyClient], Any]) -> list[Result]:
        nonlocal calls
        results = lab.storm(lambda c: op(c.keys))
        calls += len(results)
        return results

    gone = (404, "KeyNotFound")
    made: set[str] = set()
    for results in (
        storm(lambda c: c.create_ec_key(n)),
        storm(lambda c: c.import_key(n, ec_jwk())),
        storm(lambda c: c.rotate_key(n)),
    ):
        made |= {k.properties.version for k in all_ok(results)}
    assert len(made) == 3 * lab.threads
    all_ok(storm(lambda c: c.update_key_properties(n, tags={"round": "x"})))
    blob = all_ok(storm(lambda c: c.backup_key(n)))[0]
    one_wins(storm(lambda c: c.begin_delete_key(n).result()), 200, gone)
    one_wins(storm(lambda c: c.begin_recover_deleted_key(n).result()), 200, gone)
    assert key_versions(lab, n) == made
    one_wins(storm(lambda c: c.begin_delete_key(n).result()), 200, gone)
    # A rotation after the delete: the key it would rotate is gone.
    rotated = storm(lambda c: c.rotate_key(n))
    assert tally(rotated) == {gone: len(rotated)}
    one_wins(storm(lambda c: c.purge_deleted_key(n)), 204, gone)
    one_wins(storm(lambda c: c.restore_key_backup(blob)), 200, (409, "Conflict"))
    assert key_versions(lab, n) == made
    one_wins(storm(lambda c: c.begin_delete_key(n).result()), 200, gone)
    one_wins(storm(lambda c: c.purge_deleted_key(n)), 204, gone)
    return calls


def key_versions(lab: Lab, n: str) -> set[str]:
    listed = lab.one(lambda c: list(c.keys.list_properties_of_key_versions(n)))
    return {p.version for p in listed.value}


# -- certificates ------------------------------------------------------------------------------

SELF = CertificatePolicy("Self", subject="CN=storm.example", key_type=KeyType.ec)
UNKNOWN = CertificatePolicy("Unknown", subject="CN=storm.example", key_type=KeyType.ec)


def pem_bundle(ca: TestCA) -> bytes:
    key, leaf = ca.leaf("storm.example", dns=["storm.example"])
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ) + leaf.public_bytes(serialization.Encoding.PEM)


def certificates_round(lab: Lab, n: str, ca: TestCA) -> int:
    calls = 0

    def storm(op: Callable[[CertificateClient], Any]) -> list[Result]:
        nonlocal calls
        results = lab.storm(lambda c: op(c.certificates))
        calls += len(results)
        return results

    gone = (404, "CertificateNotFound")
    no_operation = (404, "PendingCertificateNotFound")
    all_ok(storm(lambda c: c.begin_create_certificate(n, SELF)), 202)
    bundle = pem_bundle(ca)
    created = cert_versions(lab, n)
    assert len(created) == lab.threads  # each create is a version of its own
    imported = {
        c.properties.version for c in all_ok(storm(lambda c: c.import_certificate(n, bundle)))
    }
    assert len(imported) == lab.threads  # and each import answers with the version it made
    all_ok(storm(lambda c: c.update_certificate_policy(n, SELF)))
    all_ok(storm(lambda c: c.update_certificate_properties(n, tags={"round": "x"})))
    made = created | imported
    assert cert_versions(lab, n) == made
    blob = all_ok(storm(lambda c: c.backup_certificate(n)))[0]
    one_wins(storm(lambda c: c.begin_delete_certificate(n).result()), 200, gone)
    one_wins(storm(lambda c: c.begin_recover_deleted_certificate(n).result()), 200, gone)
    one_wins(storm(lambda c: c.begin_delete_certificate(n).result()), 200, gone)
    one_wins(storm(lambda c: c.purge_deleted_certificate(n)), 204, gone)
    one_wins(storm(lambda c: c.restore_certificate_backup(blob)), 200, (409, "Conflict"))
    assert cert_versions(lab, n) == made

    # An Unknown issuer's operation: racing merges complete it once; then racing cancels and
    # deletes of the operation.
    requested = lab.one(lambda c: c.certificates.begin_create_certificate(n, UNKNOWN))
    assert requested.status == 202
    operation = lab.one(lambda c: c.certificates.get_certificate_operation(n)).value
    leaf = ca.sign_csr(csr_of(operation)).public_bytes(serialization.Encoding.DER)
    merged = one_wins(storm(lambda c: c.merge_certificate(n, [leaf])), 201, no_operation)
    assert x509.load_der_x509_certificate(bytes(merged.cer)).serial_number == (
        x509.load_der_x509_certificate(leaf).serial_number
    )
    assert cert_versions(lab, n) == made | {merged.properties.version}
    requested = lab.one(lambda c: c.certificates.begin_create_certificate(n, UNKNOWN))
    assert requested.status == 202
    all_ok(storm(lambda c: c.cancel_certificate_operation(n)))
    one_wins(storm(lambda c: c.delete_certificate_operation(n)), 200, no_operation)
    one_wins(storm(lambda c: c.begin_delete_certificate(n).result()), 200, gone)
    one_wins(storm(lambda c: c.purge_deleted_certificate(n)), 204, gone)

    # The vault's contacts and issuers.
    contacts = [CertificateContact(email="ops@storm.example", name="ops")]
    all_ok(storm(lambda c: c.set_contacts(contacts)))
    one_wins(storm(lambda c: c.delete_contacts()), 200, (404, "ContactsNotFound"))
    issuer = name("iss")
    all_ok(storm(lambda c: c.create_issuer(issuer, "kvault-ca", account_id="root")))
    all_ok(storm(lambda c: c.update_issuer(issuer, enabled=False)))
    one_wins(storm(lambda c: c.delete_issuer(issuer)), 200, (404, "CertificateIssuerNotFound"))
    return calls


def cert_versions(lab: Lab, n: str) -> set[str]:
    listed = lab.one(lambda c: list(c.certificates.list_properties_of_certificate_versions(n)))
    return {p.version for p in listed.value if p.version}


# -- the suites --------------------------------------------------------------------------------


def run_all(lab: Lab, rounds: int, mixed_per_thread: int) -> int:
    ca = TestCA.make("kvault storm CA")
    calls = 0
    # One name per kind for the whole run: every round starts where the last one purged it.
    secret, key, cert = name("s"), name("k"), name("c")
    for _ in range(rounds):
        calls += secrets_round(lab, secret)
        calls += keys_round(lab, key)
        calls += certificates_round(lab, cert, ca)
    calls += secrets_mixed(lab, name("m"), mixed_per_thread)
    return calls


def test_every_mutating_operation_racing_itself_answers_as_azure(lab: Lab) -> None:
    assert run_all(lab, rounds=2, mixed_per_thread=40) >= 1000
    check_answers_audit_and_log(lab)


@pytest.mark.slow
def test_every_mutating_operation_racing_itself_many_rounds(lab: Lab) -> None:
    assert run_all(lab, rounds=8, mixed_per_thread=200) >= 10_000
    check_answers_audit_and_log(lab)


def test_an_unretried_compare_and_set_is_a_conflict_not_a_500() -> None:
    """The domain retries its own; one that escapes says 409 and names no storage row."""
    response = from_kvault(
        StorageConflict("storage conflict on key 'v/0123/s/h/db': expected revision 3")
    )
    assert response.status == 409
    assert isinstance(response.body, bytes)
    error = json.loads(response.body)["error"]
    assert error["code"] == "Conflict"
    assert "concurrently" in error["message"]
    assert "storage" not in error["message"] and "0123" not in error["message"]
