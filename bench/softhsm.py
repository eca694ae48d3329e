"""A throwaway SoftHSM2 token for the pkcs11 benchmark."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
LABEL, PIN, SO_PIN = "kvault-bench", "1234", "5678"


@contextmanager
def softhsm_token(directory: Path) -> Iterator[dict[str, str]]:
    if shutil.which("softhsm2-util") is None:
        raise SystemExit("softhsm2-util is missing: run `make install`")
    tokens = directory / "tokens"
    tokens.mkdir(parents=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            LABEL,
            "--pin",
            PIN,
            "--so-pin",
            SO_PIN,
        ],
        check=True,
        capture_output=True,
    )
    os.environ["KVAULT_BENCH_PIN"] = PIN
    yield {"module": MODULE, "token_label": LABEL, "pin_env": "KVAULT_BENCH_PIN"}
