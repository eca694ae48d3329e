"""The ``kvault secret`` verbs against a real ``kvault server --dev`` over TLS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.devserver import DevServer


def kvault(
    server: DevServer, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kvault.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **server.env, **(env or {})},
        check=False,
        timeout=60,
    )


def ok(server: DevServer, *args: str) -> str:
    result = kvault(server, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def server(dev_server: DevServer) -> Iterator[DevServer]:
    yield dev_server


def test_the_classic_key_vault_example_verbatim(server: DevServer) -> None:
    ok(
        server,
        "secret",
        "set",
        "--name",
        "SecretPassword",
        "--value",
        "reindeer_flotilla",
        "--vault-name",
        "dev",
    )
    out = ok(
        server,
        "secret",
        "show",
        "--vault-name",
        "dev",
        "--name",
        "SecretPassword",
        "--query",
        "value",
        "-o",
        "tsv",
    )
    assert out == "reindeer_flotilla\n"


def test_every_verb(server: DevServer, tmp_path: Path) -> None:
    v = ("--vault-name", "dev")
    first = json.loads(
        ok(
            server,
            "secret",
            "set",
            *v,
            "-n",
            "app",
            "--value",
            "one",
            "--tags",
            "team=a",
            "--content-type",
            "text/plain",
        )
    )
    assert first["value"] == "one" and first["tags"] == {"team": "a"} and first["name"] == "app"
    version = first["id"].rsplit("/", 1)[1]
    (tmp_path / "v.bin").write_bytes(b"\x00\xffbinary")
    second = json.loads(
        ok(
            server,
            "secret",
            "set",
            *v,
            "-n",
            "app",
            "--file",
            str(tmp_path / "v.bin"),
            "--encoding",
            "base64",
        )
    )
    assert second["tags"]["file-encoding"] == "base64"

    assert (
        ok(
            server,
            "secret",
            "show",
            *v,
            "-n",
            "app",
            "--version",
            version,
            "--query",
            "value",
            "-o",
            "tsv",
        )
        == "one\n"
    )
    names = json.loads(ok(server, "secret", "list", *v, "--query", "[].name"))
    assert "app" in names
    versions = json.loads(ok(server, "secret", "list-versions", *v, "-n", "app"))
    assert len(versions) == 2 and all("value" not in x for x in versions)

    attrs = json.loads(
        ok(
            server,
            "secret",
            "set-attributes",
            *v,
            "-n",
            "app",
            "--enabled",
            "false",
            "--expires",
            "2030-01-01T00:00:00Z",
        )
    )
    assert attrs["attributes"]["enabled"] is False
    assert attrs["attributes"]["expires"] == "2030-01-01T00:00:00+00:00"
    denied = kvault(server, "secret", "show", *v, "-n", "app")
    assert denied.returncode == 1 and "disabled" in denied.stderr
    ok(server, "secret", "set-attributes", *v, "-n", "app", "--enabled", "true")

    ok(server, "secret", "backup", *v, "-n", "app", "--file", str(tmp_path / "app.bak"))
    deleted = json.loads(ok(server, "secret", "delete", *v, "-n", "app"))
    assert deleted["recoveryId"].endswith("/deletedsecrets/app")
    assert "app" in json.loads(ok(server, "secret", "list-deleted", *v, "--query", "[].name"))
    assert json.loads(ok(server, "secret", "show-deleted", *v, "-n", "app"))["name"] == "app"
    ok(server, "secret", "recover", *v, "-n", "app")
    ok(server, "secret", "delete", *v, "-n", "app")
    ok(server, "secret", "purge", *v, "-n", "app")
    missing = kvault(server, "secret", "show", *v, "-n", "app")
    assert missing.returncode == 3 and missing.stderr.startswith("ERROR: (SecretNotFound)")
    assert len(missing.stderr.strip().splitlines()) == 1
    restored = json.loads(ok(server, "secret", "restore", *v, "--file", str(tmp_path / "app.bak")))
    assert restored["name"] == "app"
    assert (
        ok(
            server,
            "secret",
            "show",
            *v,
            "-n",
            "app",
            "--version",
            version,
            "--query",
            "value",
            "-o",
            "tsv",
        )
        == "one\n"
    )


def test_errors_are_one_line_with_reliable_exit_codes(server: DevServer) -> None:
    bad_token = kvault(
        server, "secret", "show", "--vault-name", "dev", "-n", "x", env={"KVAULT_TOKEN": "nope"}
    )
    assert bad_token.returncode == 4
    no_token = kvault(
        server, "secret", "show", "--vault-name", "dev", "-n", "x", env={"KVAULT_TOKEN": ""}
    )
    assert no_token.returncode == 4 and "KVAULT_TOKEN" in no_token.stderr
    bad_name = kvault(
        server, "secret", "set", "--vault-name", "dev", "-n", "bad_name", "--value", "x"
    )
    assert bad_name.returncode == 1 and "letters, digits and hyphens" in bad_name.stderr
    usage = kvault(server, "secret", "set", "--vault-name", "dev", "-n", "x")
    assert usage.returncode == 2 and "exactly one of --value and --file" in usage.stderr
    for r in (bad_token, no_token, bad_name, usage):
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


# --- az's rough edges (issue 12 finding 10) -----------------------------------------------------


def test_az_habits_version_output_none_and_a_value_starting_with_a_dash(server: DevServer) -> None:
    version = kvault(server, "--version")
    assert version.returncode == 0 and version.stdout.startswith("kvault "), version
    v = ("--vault-name", "dev", "--name", "dashed")
    quiet = kvault(server, "secret", "set", *v, "--value", "-abc", "-o", "none")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout == ""  # -o none prints nothing; the exit code says how it went
    assert ok(server, "secret", "show", *v, "--query", "value", "-o", "tsv") == "-abc\n"
    missing = kvault(server, "secret", "show", "--vault-name", "dev", "-n", "nope", "-o", "none")
    assert missing.returncode != 0 and missing.stdout == ""


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (("vault", "list"), "vaults are Kubernetes resources here"),
        (("secrt", "set"), "Did you mean 'secret'?"),
        (("secret", "sho"), "Did you mean 'show'?"),
    ],
)
def test_an_unknown_command_is_named_with_a_hint(
    server: DevServer, args: tuple[str, ...], hint: str
) -> None:
    result = kvault(server, *args)
    assert result.returncode == 2
    unknown = args[1] if args[0] in ("secret", "vault") else args[0]
    assert f"'{unknown}' is misspelled or not recognized by the system." in result.stderr
    assert hint in result.stderr
    assert "invalid choice" not in result.stderr
