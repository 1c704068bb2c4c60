"""The deployment examples beyond compose: the ECS Fargate task definition registers with ECS
(moto, with botocore's parameter validation) and the Kubernetes manifests parse; each runs
waggle with the ports and the health check the image declares (Dockerfile EXPOSE and
HEALTHCHECK), and points the app at it with the two variables."""

import json
from pathlib import Path

import yaml

from moto_server import MotoServer
from test_packaging import exec_form, runtime_instruction, strip_flags

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TASK_DEFINITION = EXAMPLES / "ecs" / "task-definition.json"
MANIFESTS = sorted((EXAMPLES / "kubernetes").glob("*.yaml"))
# What an app beside waggle sets, and nothing else.
APP_VARIABLES = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318", "AWS_XRAY_DAEMON_ADDRESS": "localhost:2000"}


def image_ports():
    """The image's EXPOSE as {(port, protocol)}, protocols upper-case."""
    ports = set()
    for word in runtime_instruction("EXPOSE").split():
        port, _, protocol = word.partition("/")
        ports.add((int(port), (protocol or "tcp").upper()))
    return ports


def image_health_command():
    """The HEALTHCHECK's exec-form command, without the leading CMD."""
    arguments = strip_flags(runtime_instruction("HEALTHCHECK"))
    assert arguments.startswith("CMD "), arguments
    return exec_form(arguments[len("CMD ") :], "HEALTHCHECK")


def by_name(items, name):
    found = [item for item in items if item["name"] == name]
    assert len(found) == 1, f"expected one {name!r} in {[item['name'] for item in items]}"
    return found[0]


def kubernetes_workloads():
    """(file name, pod spec) of every Deployment and DaemonSet in the examples."""
    workloads = []
    for path in MANIFESTS:
        for document in yaml.safe_load_all(path.read_text()):
            if document and document["kind"] in ("Deployment", "DaemonSet"):
                workloads.append((path.name, document["spec"]["template"]["spec"]))
    return workloads


def waggle_container(pod):
    return by_name(pod.get("initContainers", []) + pod["containers"], "waggle")


def test_the_ecs_task_definition_registers_with_ecs():
    definition = json.loads(TASK_DEFINITION.read_text())
    with MotoServer() as moto:
        ecs = moto.client("ecs")

        registered = ecs.register_task_definition(**definition)["taskDefinition"]
        described = ecs.describe_task_definition(taskDefinition=registered["taskDefinitionArn"])["taskDefinition"]

    assert described["requiresCompatibilities"] == ["FARGATE"]
    assert {c["name"] for c in described["containerDefinitions"]} == {"waggle", "app"}


def test_the_ecs_sidecar_is_essential_healthy_first_and_keyless():
    definition = json.loads(TASK_DEFINITION.read_text())
    waggle = by_name(definition["containerDefinitions"], "waggle")
    app = by_name(definition["containerDefinitions"], "app")

    assert waggle["essential"] is True
    assert waggle["healthCheck"]["command"] == ["CMD", *image_health_command()]
    assert {(p["containerPort"], p["protocol"].upper()) for p in waggle["portMappings"]} == image_ports()
    assert {"containerName": "waggle", "condition": "HEALTHY"} in app["dependsOn"]
    assert definition["taskRoleArn"]
    names = {e["name"] for c in definition["containerDefinitions"] for e in c.get("environment", [])}
    assert not names & {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "HONEYCOMB_API_KEY"}
    assert all(c["logConfiguration"]["logDriver"] == "awslogs" for c in definition["containerDefinitions"])
    assert {e["name"]: e["value"] for e in app["environment"]}.items() >= APP_VARIABLES.items()


def test_the_kubernetes_manifests_run_waggle_with_the_image_ports_and_health_check():
    workloads = kubernetes_workloads()
    assert {name for name, _ in workloads} == {"sidecar.yaml", "daemonset.yaml"}
    for name, pod in workloads:
        waggle = waggle_container(pod)
        ports = {(p["containerPort"], p["protocol"]) for p in waggle["ports"]}
        assert ports == image_ports(), name
        assert waggle["livenessProbe"]["exec"]["command"] == image_health_command(), name
        assert {m["mountPath"] for m in waggle["volumeMounts"]} == {"/var/lib/waggle"}, name


def test_the_kubernetes_sidecar_starts_before_the_app_and_the_app_uses_localhost():
    [pod] = [pod for name, pod in kubernetes_workloads() if name == "sidecar.yaml"]
    waggle = waggle_container(pod)
    app = by_name(pod["containers"], "app")

    assert waggle in pod["initContainers"] and waggle["restartPolicy"] == "Always"
    assert {e["name"]: e.get("value") for e in app["env"]}.items() >= APP_VARIABLES.items()
    assert not any(e["name"].startswith("AWS_SECRET") for e in waggle["env"] + app["env"])
