"""Known dependencies: the locks cover pyproject.toml, carry hashes, agree with each other, and
the image, the Makefile (so CI) and the compose file's Redis install or run pinned versions."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.files import DEPLOY, load_yaml
from tests.support import ROOT

RUNTIME_LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"
FLOWER_LOCK = DEPLOY / "flower.lock"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\$")


def _pins(lock: Path) -> dict[str, str]:
    """Package -> version of a pip-compile lock; every pin is followed by its sha256 hashes."""
    lines = lock.read_text().splitlines()
    pins: dict[str, str] = {}
    for number, line in enumerate(lines):
        if match := _PIN.match(line):
            assert lines[number + 1].strip().startswith("--hash=sha256:"), (lock.name, line)
            pins[canonicalize_name(match[1])] = match[2]
    bare = [line for line in lines if line and not line.startswith((" ", "#")) and "==" in line]
    assert len(bare) == len(pins), f"{lock.name}: a requirement without a hash or a pin"
    return pins


def _project() -> dict[str, list[Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {
        "runtime": [Requirement(r) for r in project["dependencies"]],
        "dev": [Requirement(r) for r in project["optional-dependencies"]["dev"]],
    }


def _assert_locked(requirements: list[Requirement], pins: dict[str, str], lock: str) -> None:
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in {lock}: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{lock} pins {name}=={pins[name]}, outside {requirement}: run `make lock`"
        )


def test_the_runtime_lock_holds_every_dependency_at_an_allowed_version_with_hashes() -> None:
    """requirements.lock installs what pyproject.toml asks for, and the build backend too."""
    pins = _pins(RUNTIME_LOCK)
    _assert_locked(_project()["runtime"], pins, RUNTIME_LOCK.name)
    assert {"setuptools", "wheel"} <= set(pins)  # `pip install --no-build-isolation -e .`


def test_the_dev_lock_adds_the_dev_extra_and_keeps_every_runtime_version() -> None:
    """Tests run against exactly the versions production installs."""
    runtime, dev = _pins(RUNTIME_LOCK), _pins(DEV_LOCK)
    _assert_locked(_project()["dev"], dev, DEV_LOCK.name)
    assert {name: dev.get(name) for name in runtime} == runtime


def test_flower_is_locked_with_the_versions_escalera_runs() -> None:
    """The image's Flower shares Celery and kombu with Escalera: one version of each."""
    runtime, flower = _pins(RUNTIME_LOCK), _pins(FLOWER_LOCK)
    assert "flower" in flower
    assert {name: version for name, version in flower.items() if name in runtime} == {
        name: runtime[name] for name in flower if name in runtime
    }


def test_the_image_is_built_from_a_pinned_python_and_the_locks_only() -> None:
    """A Python release as base; packages with --require-hashes; the project itself --no-deps."""
    lines = (DEPLOY / "Dockerfile").read_text().splitlines()
    [base] = [line.split()[1] for line in lines if line.startswith("FROM ")]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base), base
    installs = [line for line in lines if "pip install" in line]
    assert installs[0].split("pip install ")[1] == (
        "--require-hashes --no-deps -r requirements.lock -r flower.lock"
    )
    assert all("--no-deps" in line for line in installs)
    assert "--no-build-isolation" in installs[1]


def test_the_makefile_installs_from_the_locks_with_hashes() -> None:
    """`make run`, `make test` and `make lint` (so CI) install the locked versions, verified."""
    makefile = (ROOT / "Makefile").read_text()
    assert "LOCKED_INSTALL = $(BIN)/pip install --quiet --require-hashes --no-deps" in makefile
    assert "$(LOCKED_INSTALL) -r requirements.lock\n" in makefile
    assert "$(LOCKED_INSTALL) -r requirements-dev.lock\n" in makefile
    for stamp in ("$(STAMP):", "$(DEV_STAMP):"):
        recipe = makefile.split(f"\n{stamp}", 1)[1].split("\n\n", 1)[0]
        assert "$(LOCKED_INSTALL) -r requirements" in recipe, stamp
        assert "$(PROJECT_INSTALL)" in recipe and "pip check" in recipe, stamp
    assert "PROJECT_INSTALL = $(BIN)/pip install --quiet --no-deps --no-build-isolation -e ." in (
        makefile
    )
    assert "\nlock:\n" in makefile


def test_the_compose_redis_is_a_pinned_release() -> None:
    """The queue's server is a known Redis release, not whatever `redis:7` points at today."""
    image = load_yaml(DEPLOY / "docker-compose.yml")["services"]["redis"]["image"]
    assert re.fullmatch(r"redis:7\.\d+\.\d+", image), image
