"""``kvault az-cloud`` prints the lines docs/azure-cli.md evaluates (the Azure CLI runs them in
tests/api/test_azure_cli.py); here, their exact shape and the usage errors."""

from __future__ import annotations

import shlex

import pytest

from kvault.cli.main import main

DEV = "https://127.0.0.1:8443"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("KVAULT_ENDPOINT", "KVAULT_TOKEN", "KVAULT_CA_FILE"):
        monkeypatch.delenv(var, raising=False)


def _lines(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    assert main(["az-cloud", *argv]) == 0
    return capsys.readouterr().out.splitlines()


def test_dev_server_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KVAULT_ENDPOINT", DEV)
    monkeypatch.setenv("KVAULT_TOKEN", "kvr.secret")
    monkeypatch.setenv("KVAULT_CA_FILE", "/tmp/dev data/ca.pem")

    exports, cloud, use, login = _lines(capsys)

    assert exports == (
        "export REQUESTS_CA_BUNDLE='/tmp/dev data/ca.pem' AZURE_CORE_INSTANCE_DISCOVERY=false "
        "AZURE_CORE_COLLECT_TELEMETRY=false"
    )
    register = (
        f"--name kvault --endpoint-active-directory {DEV} --endpoint-active-directory-resource-id "
        f"{DEV}/arm/ --endpoint-resource-manager {DEV}/arm/ --suffix-keyvault-dns "
        ".localhost:8443 --skip-endpoint-discovery"
    )
    assert cloud == (
        "if az cloud show --name kvault --output none 2>/dev/null; "
        f"then az cloud update {register} --output none; else az cloud register {register}; fi"
    )
    assert use == "export AZURE_CLOUD_NAME=kvault"
    assert login == (
        "az login --service-principal --username kvault-cli --tenant kvault "
        '--federated-token "$KVAULT_TOKEN"'
    )
    assert "kvr.secret" not in "\n".join([exports, cloud, use, login])


def test_cluster_lines(capsys: pytest.CaptureFixture[str]) -> None:
    lines = _lines(
        capsys,
        "--endpoint",
        "https://kvault.kvault-system.svc",
        "--namespace",
        "team-a",
        "--service-account",
        "deployer",
        "--cloud-name",
        "kvault-team-a",
    )
    assert (
        lines[0] == "export AZURE_CORE_INSTANCE_DISCOVERY=false AZURE_CORE_COLLECT_TELEMETRY=false"
    )
    register = shlex.split(lines[1].split("; then az cloud update ")[1].split(" --output none")[0])
    assert register[register.index("--suffix-keyvault-dns") + 1] == ".team-a.svc"
    assert register[register.index("--endpoint-active-directory") + 1] == (
        "https://kvault.kvault-system.svc"
    )
    assert lines[2] == "export AZURE_CLOUD_NAME=kvault-team-a"
    assert lines[3].endswith(
        '--federated-token "$(kubectl create token deployer --namespace team-a --audience kvault)"'
    )


def test_port_443_is_left_out_of_the_suffix(capsys: pytest.CaptureFixture[str]) -> None:
    lines = _lines(capsys, "--endpoint", "https://localhost:443", "--federated-token", '"$T"')
    assert "--suffix-keyvault-dns .localhost --skip-endpoint-discovery" in lines[1]
    assert lines[3].endswith('--federated-token "$T"')


@pytest.mark.parametrize(
    ("argv", "env", "says"),
    [
        ((), {}, "no endpoint"),
        ((), {"KVAULT_ENDPOINT": DEV}, "no token"),
        (("--endpoint", "http://127.0.0.1:8443"), {"KVAULT_TOKEN": "t"}, "https://"),
        (("--endpoint", f"{DEV}/secrets"), {"KVAULT_TOKEN": "t"}, "https://host[:port] only"),
    ],
)
def test_usage_errors(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
    env: dict[str, str],
    says: str,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["az-cloud", *argv]) == 2
    assert says in capsys.readouterr().err
