"""The Kubernetes manifests under deploy/ (applied with ``kubectl apply -k deploy/``)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.policy_file import load_policy
from shared.policy_routes import channel_env
from tests.deploy.files import DEPLOY, assert_escalera_command, load_documents, load_yaml
from worker.cli import main

KUSTOMIZATION = DEPLOY / "kustomization.yaml"


@pytest.fixture(scope="module")
def manifests() -> dict[tuple[str, str], dict[str, Any]]:
    """Every resource kustomization.yaml lists, by (kind, name)."""
    found = {}
    for resource in load_yaml(KUSTOMIZATION)["resources"]:
        for doc in load_documents(DEPLOY / resource):
            assert {"apiVersion", "kind", "metadata"} <= set(doc), resource
            found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def test_the_expected_kinds_are_there(manifests: dict[tuple[str, str], dict[str, Any]]) -> None:
    """Three Deployments, the ingest Service, settings, the Secret and the migration Job."""
    assert set(manifests) == {
        ("Namespace", "escalera"),
        ("ConfigMap", "escalera-config"),
        ("Secret", "escalera-secrets"),
        ("Job", "escalera-migrate"),
        ("Deployment", "escalera-ingest"),
        ("Service", "escalera-ingest"),
        ("Deployment", "escalera-worker"),
        ("Deployment", "escalera-beat"),
    }


def test_containers_run_real_cli_commands(manifests: dict[tuple[str, str], dict[str, Any]]) -> None:
    for (kind, name), doc in manifests.items():
        if kind in ("Deployment", "Job"):
            container = _container(doc)
            assert_escalera_command(container["args"], f"{kind} {name}")
            env_from = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
            assert env_from == {"escalera-config", "escalera-secrets"}, name


def test_beat_runs_as_a_single_replica_without_overlap(
    manifests: dict[tuple[str, str], dict[str, Any]],
) -> None:
    beat = manifests[("Deployment", "escalera-beat")]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    assert _container(beat)["args"][0] == "beat"


def test_ingest_is_probed_on_healthz_and_readyz_behind_its_service(
    manifests: dict[tuple[str, str], dict[str, Any]],
) -> None:
    """Liveness on /healthz; readiness on /readyz (503 while the database or Redis is down)."""
    ingest = manifests[("Deployment", "escalera-ingest")]
    container = _container(ingest)
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    port = container["args"][container["args"].index("--port") + 1]
    assert container["ports"] == [{"name": "http", "containerPort": int(port)}]
    service = manifests[("Service", "escalera-ingest")]
    assert service["spec"]["selector"] == ingest["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_every_pod_is_scraped_on_the_port_its_process_serves_metrics(
    manifests: dict[tuple[str, str], dict[str, Any]],
) -> None:
    for name, flag in (
        ("escalera-ingest", "--port"),
        ("escalera-worker", "--metrics-port"),
        ("escalera-beat", "--metrics-port"),
    ):
        deployment = manifests[("Deployment", name)]
        args = _container(deployment)["args"]
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == args[args.index(flag) + 1], name
        if flag == "--metrics-port":
            assert args[args.index("--metrics-host") + 1] == "0.0.0.0", name


def test_policies_come_from_a_configmap_of_the_presets_that_pass_policy_check(
    manifests: dict[tuple[str, str], dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    """The generated escalera-policies ConfigMap is mounted where ESCALERA_POLICY_DIR points."""
    (generator,) = load_yaml(KUSTOMIZATION)["configMapGenerator"]
    assert generator["name"] == "escalera-policies"
    files = [DEPLOY / path for path in generator["files"]]
    assert sorted(files) == sorted((DEPLOY / "policies").glob("*.yaml"))
    assert main(["policy", "check", *map(str, files)]) == 0, capsys.readouterr().err
    policy_dir = manifests[("ConfigMap", "escalera-config")]["data"]["ESCALERA_POLICY_DIR"]
    for name in ("escalera-ingest", "escalera-worker", "escalera-beat"):
        spec = manifests[("Deployment", name)]["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        mounts = {
            m["mountPath"]: m["name"]
            for m in _container({"spec": {"template": {"spec": spec}}})["volumeMounts"]
        }
        assert volumes[mounts[policy_dir]]["configMap"]["name"] == "escalera-policies", name


def test_channel_urls_and_credentials_are_in_the_secret_never_in_a_configmap(
    manifests: dict[tuple[str, str], dict[str, Any]],
) -> None:
    """Every channel of the default policy has its variable in the Secret; no ConfigMap holds one."""
    config = manifests[("ConfigMap", "escalera-config")]["data"]
    secret = manifests[("Secret", "escalera-secrets")]["stringData"]
    policy = load_policy(DEPLOY / "policies" / f"{config['ESCALERA_DEFAULT_POLICY']}.yaml")
    assert {channel_env(name) for name in policy.channels} <= set(secret)
    assert {"DATABASE_URL", "REDIS_URL", "ESCALERA_API_TOKENS", "ESCALERA_ACK_SECRET"} <= set(
        secret
    )
    sensitive = ("CHANNEL", "SECRET", "TOKEN", "DATABASE_URL", "REDIS_URL", "PASSWORD")
    assert not [key for key in config if any(word in key for word in sensitive)]
    for value in config.values():
        assert "://" not in value or value.startswith("https://escalera."), value
