"""deploy/docker-compose.yml read as Compose reads it (YAML with merge keys); no docker needed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.config import Settings
from tests.deploy.files import DEPLOY, assert_escalera_command, load_yaml

COMPOSE = DEPLOY / "docker-compose.yml"


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    document = load_yaml(COMPOSE)
    assert set(document) >= {"services", "volumes"}
    services: dict[str, Any] = document["services"]
    return services


def test_every_service_the_pipeline_needs_is_there_with_an_image_or_a_build(
    services: dict[str, Any],
) -> None:
    """PostgreSQL, Redis, the migration, ingest, worker, beat and Flower: each runnable."""
    assert set(services) >= {"postgres", "redis", "migrate", "ingest", "worker", "beat", "flower"}
    for name, service in services.items():
        assert "image" in service or "build" in service, name
    build = services["worker"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()


def test_escalera_services_run_real_cli_commands(services: dict[str, Any]) -> None:
    """Each Escalera container's command is one the ``escalera`` CLI accepts."""
    expected = {"migrate": "db", "ingest": "ingest", "worker": "worker", "beat": "beat"}
    for name, command in expected.items():
        argv = services[name]["command"]
        assert argv[0] == command
        assert_escalera_command(argv, f"{COMPOSE.name}: {name}")
    assert services["flower"]["entrypoint"][:3] == ["celery", "--app", "shared.celery_app:app"]


def test_redis_persists_with_aof_and_never_evicts_a_queued_event(services: dict[str, Any]) -> None:
    """appendonly yes, fsync every second, noeviction; its data on a named volume."""
    command = services["redis"]["command"]
    flags = dict(zip(command[1::2], command[2::2], strict=True))
    assert flags == {
        "--appendonly": "yes",
        "--appendfsync": "everysec",
        "--maxmemory-policy": "noeviction",
    }
    assert services["redis"]["volumes"] == ["redisdata:/data"]
    assert services["postgres"]["volumes"] == ["pgdata:/var/lib/postgresql/data"]
    assert set(load_yaml(COMPOSE)["volumes"]) == {"pgdata", "redisdata"}


def test_processes_start_after_migrations_and_point_at_the_compose_databases(
    services: dict[str, Any],
) -> None:
    """Ingest, worker and beat wait for a migrated database and a healthy Redis."""
    for name in ("ingest", "worker", "beat"):
        service = services[name]
        assert service["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "redis": {"condition": "service_healthy"},
        }, name
        env = service["environment"]
        assert env["DATABASE_URL"].startswith("postgresql://escalera:escalera@postgres:5432/")
        assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert "healthcheck" in services["postgres"] and "healthcheck" in services["redis"]


def test_secrets_come_from_an_env_file_that_is_not_in_the_repository(
    services: dict[str, Any],
) -> None:
    """Tokens and channel URLs are read from deploy/escalera.env, of which only an example is shipped."""
    assert services["ingest"]["env_file"] == [{"path": "./escalera.env", "required": False}]
    assert not (DEPLOY / "escalera.env").exists()
    example = (DEPLOY / "escalera.env.example").read_text()
    assert "ESCALERA_CHANNEL_ONCALL_PHONE=" in example
    for service in services.values():
        assert not any("ESCALERA_CHANNEL_" in key for key in service.get("environment", {}))


def test_prometheus_scrapes_each_process_group_on_its_metrics_port(
    services: dict[str, Any],
) -> None:
    """The ports in prometheus.yml are the ones ingest, worker and beat serve /metrics on."""
    jobs = {job["job_name"]: job for job in load_yaml(DEPLOY / "prometheus.yml")["scrape_configs"]}
    ports = {
        "escalera-ingest": services["ingest"]["command"][
            services["ingest"]["command"].index("--port") + 1
        ],
        "escalera-worker": services["worker"]["command"][
            services["worker"]["command"].index("--metrics-port") + 1
        ],
        "escalera-beat": services["beat"]["command"][
            services["beat"]["command"].index("--metrics-port") + 1
        ],
    }
    for job, port in ports.items():
        config = jobs[job]
        found = [sd["port"] for sd in config.get("dns_sd_configs", [])] + [
            int(target.rsplit(":", 1)[1])
            for static in config.get("static_configs", [])
            for target in static["targets"]
        ]
        assert found == [int(port)], job


def test_prometheus_scrapes_ingest_with_a_read_key_from_a_compose_secret(
    services: dict[str, Any],
) -> None:
    """Ingest's /metrics needs a read-scoped key: Prometheus reads its token from a secret file."""
    jobs = {job["job_name"]: job for job in load_yaml(DEPLOY / "prometheus.yml")["scrape_configs"]}
    token_file = jobs["escalera-ingest"]["authorization"]["credentials_file"]
    assert token_file.startswith("/run/secrets/")
    secret = token_file.removeprefix("/run/secrets/")
    assert secret in services["prometheus"]["secrets"]
    compose = load_yaml(DEPLOY / "docker-compose.yml")
    assert compose["secrets"][secret]["file"] == "./prometheus-token"
    assert not (DEPLOY / "prometheus-token").exists()  # made on the host, never committed


def test_the_example_keys_load_and_one_of_them_reads_metrics() -> None:
    """deploy/escalera.env.example's keys are valid settings, with a read key for Prometheus."""
    line = next(
        line
        for line in (DEPLOY / "escalera.env.example").read_text().splitlines()
        if line.startswith("ESCALERA_API_KEYS=")
    )
    config = Settings.model_validate({"api_keys": json.loads(line.partition("=")[2])})
    assert {key.name: key.scopes for key in config.api_keys}["prometheus"] == ["read"]


def test_the_image_copies_what_exists_and_puts_the_policies_where_it_says() -> None:
    """Every COPY source is in the repository; ESCALERA_POLICY_DIR is where the presets go."""
    lines = (DEPLOY / "Dockerfile").read_text().splitlines()
    copies = [line.split()[1:] for line in lines if line.startswith("COPY ")]
    for *sources, _target in copies:
        for source in sources:
            assert (DEPLOY.parent / source).exists(), source
    assert ["deploy/policies", "/etc/escalera/policies"] in copies
    assert any("ESCALERA_POLICY_DIR=/etc/escalera/policies" in line for line in lines)
    assert 'ENTRYPOINT ["escalera"]' in lines
