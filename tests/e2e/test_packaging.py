"""The container packaging: Dockerfile, docker-compose.yml and the example app's image.

No Docker engine runs in CI, so the image is never built here. What can be proved without it:

- docker-compose.yml is valid (Debian's docker-compose validates without an engine);
- the compose file wires the app to waggle with three variables and nothing else, and keys go
  to waggle only;
- the example app, run outside Docker with exactly the compose file's environment (host
  `waggle` → 127.0.0.1, ports → the test waggle's), gets its traces, X-Ray segments, logs and
  metrics into the local store of a waggle started with the compose file's environment for
  waggle (with nothing set on the host: local store only);
- the image builds the binary with the very command CI builds and tests (scripts/test);
- the image's environment makes every listener bind all interfaces and puts the data
  directory on the VOLUME, and EXPOSE lists exactly those ports;
- the image's ENTRYPOINT with the X-Ray daemon's `command: xray -o -b host:2000` runs, the
  HEALTHCHECK command reports healthy (and unhealthy once waggle is gone), and the binary
  answers to the daemon's own entrypoint when called as `xray`.
"""

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from helpers import (
    REPO,
    Waggle,
    WaggleError,
    WaggleFactory,
    clean_environment,
    new_xray_trace_id,
    parse_xray_datagrams,
    run_driver,
    wait_for,
    waggle_binary,
    xray_datagram,
    xray_entities,
    xray_segment,
    xray_to_otlp_trace_id,
)

pytestmark = pytest.mark.timeout(120)

DOCKERFILE = REPO / "Dockerfile"
COMPOSE_FILE = REPO / "docker-compose.yml"
CI_SCRIPT = REPO / "scripts" / "test"
APP_SERVICE = "backend-flask"
# The only variables the app needs to reach waggle (README: "Point your app at it").
APP_WIRING = {
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://waggle:4318",
    "OTEL_SERVICE_NAME": "backend-flask",
    "AWS_XRAY_DAEMON_ADDRESS": "waggle:2000",
}
# Passed from the host to waggle only, unset allowed.
HOST_SECRETS = (
    "HONEYCOMB_API_KEY",
    "ROLLBAR_ACCESS_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
)


# ---- reading the Dockerfile ------------------------------------------------------------------


def dockerfile_instructions(path=DOCKERFILE):
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    instructions = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        keyword, _, arguments = pending.strip().partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def stages(instructions):
    """The instructions of each build stage, in order, each list starting with its FROM."""
    result = []
    for keyword, arguments in instructions:
        if keyword == "FROM":
            result.append([])
        assert result, f"{keyword} before the first FROM"
        result[-1].append((keyword, arguments))
    return result


def strip_flags(arguments):
    """A RUN/COPY/HEALTHCHECK argument string without its leading `--flag=value` options."""
    while arguments.startswith("--"):
        _, _, arguments = arguments.partition(" ")
        arguments = arguments.lstrip()
    return arguments


def exec_form(arguments, instruction):
    """The JSON array of an exec-form instruction (ENTRYPOINT, CMD) as a list."""
    assert arguments.startswith("["), f"{instruction} is not in exec form (no shell in the image): {arguments}"
    return json.loads(arguments)


def normalized_command(command):
    return " ".join(shlex.split(command))


def cargo_build_commands(shell_text):
    """Every `cargo build …` command in a shell command string (split at && ; |)."""
    commands = []
    for part in re.split(r"&&|\|\||;|\|", shell_text):
        words = shlex.split(part, comments=True)
        if words[:2] == ["cargo", "build"]:
            commands.append(" ".join(words))
    return commands


def image_env():
    """The ENV of the runtime (last) stage, as a dict."""
    env = {}
    for keyword, arguments in stages(dockerfile_instructions())[-1]:
        if keyword == "ENV":
            for word in shlex.split(arguments):
                key, sep, value = word.partition("=")
                assert sep, f"ENV {arguments!r}: use the KEY=VALUE form"
                env[key] = value
    return env


def runtime_instruction(name):
    found = [arguments for keyword, arguments in stages(dockerfile_instructions())[-1] if keyword == name]
    assert len(found) == 1, f"the runtime stage needs exactly one {name}, has {found}"
    return found[0]


def ci_build_commands():
    """The release `cargo build` commands scripts/test runs (comments and echo lines ignored)."""
    commands = []
    for line in CI_SCRIPT.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith(("#", "echo ")):
            continue
        commands += [c for c in cargo_build_commands(stripped) if "--release" in c.split()]
    return commands


def waggle_config(args=(), env=None):
    """`waggle … config` run as a container would run it (no config file), parsed."""
    completed = subprocess.run(
        [str(waggle_binary()), *args],
        env=clean_environment(env),
        cwd="/",  # no config/waggle.toml here, as in the image
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert completed.returncode == 0, f"waggle {' '.join(args)} exited {completed.returncode}: {completed.stderr}"
    return tomllib.loads(completed.stdout)


def listener_endpoints(config):
    """{listener name: endpoint} for every receiver and the admin endpoint."""
    endpoints = {name: section["endpoint"] for name, section in config["receivers"].items()}
    endpoints["admin"] = config["admin"]["endpoint"]
    return endpoints


def port_of(endpoint):
    return int(endpoint.rpartition(":")[2])


# ---- reading docker-compose.yml --------------------------------------------------------------


def compose():
    return yaml.safe_load(COMPOSE_FILE.read_text())


def service_environment(service):
    """A service's `environment:` as a dict (both the mapping and the list form)."""
    environment = compose()["services"][service].get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    return {key: "" if value is None else str(value) for key, value in environment.items()}


_INTERPOLATION = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}|\$(\w+)")


def interpolate(value, host_env):
    """Compose's variable substitution (`${VAR}`, `${VAR:-default}`, `$VAR`) against `host_env`."""

    def substitute(match):
        name = match.group(1) or match.group(3)
        default = match.group(2) or ""
        return host_env.get(name) or default

    return _INTERPOLATION.sub(substitute, value.replace("$$", "\0")).replace("\0", "$")


# ---- a waggle started as the image starts it -------------------------------------------------


class ImageWaggle(Waggle):
    """waggle started with an exact command line (the image's ENTRYPOINT + a compose command)."""

    def __init__(self, workdir, argv, env, name):
        super().__init__(workdir, name=name, env=env)
        self.argv = argv

    def command_line(self):
        return self.argv


def loopback_image_env(data_dir):
    """The image's ENV with every 0.0.0.0 listener moved to 127.0.0.1:0 and the data directory
    to `data_dir` (tests bind loopback only), and JSON logs for the harness."""
    env = {}
    for key, value in image_env().items():
        if value.startswith("0.0.0.0:"):
            value = "127.0.0.1:0"
        env[key] = value
    env["WAGGLE_DATA_DIR"] = str(data_dir)
    env["WAGGLE_LOG__FORMAT"] = "json"
    return env


def free_udp_and_tcp_port():
    """A loopback port free for UDP and TCP alike (`AWS_XRAY_DAEMON_ADDRESS=host:port` is both)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise AssertionError("no loopback port free for both UDP and TCP")


# ---- docker-compose.yml ----------------------------------------------------------------------


def test_compose_file_is_valid():
    """`docker-compose config -q` validates the file (and that every build context exists)."""
    binary = shutil.which("docker-compose")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is not installed (.ci/run installs it)")
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    # No host variables: nothing secret can reach its output, and unset must be fine.
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    completed = subprocess.run(
        [binary, "-f", str(COMPOSE_FILE), "config", "-q"], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, f"docker-compose config -q failed:\n{completed.stderr[-3000:]}"


def test_compose_wires_the_app_with_three_variables_and_keys_go_to_waggle_only():
    services = compose()["services"]
    assert set(services) == {"waggle", APP_SERVICE}
    assert service_environment(APP_SERVICE) == APP_WIRING

    waggle_env = service_environment("waggle")
    assert set(waggle_env) == set(HOST_SECRETS)
    for name in HOST_SECRETS:
        # From the host, unset allowed; never a literal value in the file.
        assert waggle_env[name] == f"${{{name}:-}}", f"{name}: {waggle_env[name]!r}"
    assert not set(HOST_SECRETS) & set(service_environment(APP_SERVICE)), "a key reached the app"
    assert "OTEL_EXPORTER_OTLP_HEADERS" not in service_environment(APP_SERVICE)

    # Both images are built from folders of this repository, the app's with its own Dockerfile.
    assert services["waggle"]["build"] == "."
    app_context = REPO / services[APP_SERVICE]["build"]
    assert (app_context / "Dockerfile").is_file() and (app_context / "app.py").is_file()
    # The app's container port is the one its image serves on.
    app_image = dockerfile_instructions(app_context / "Dockerfile")
    app_env = [word for keyword, arguments in app_image if keyword == "ENV" for word in shlex.split(arguments)]
    assert "PORT=4567" in app_env and ("EXPOSE", "4567") in app_image
    assert [port.rpartition(":")[2] for port in services[APP_SERVICE]["ports"]] == ["4567"]


def test_compose_data_volume_is_the_image_data_directory():
    volumes = compose()["services"]["waggle"]["volumes"]
    targets = [volume.split(":")[1] for volume in volumes]
    assert targets == [image_env()["WAGGLE_DATA_DIR"]]
    assert shlex.split(runtime_instruction("VOLUME").strip("[]").replace(",", " ")) == targets


def compose_app_env_for(waggle, xray_port):
    """The compose file's environment for the app, pointed at the test's waggle: the host
    `waggle` becomes 127.0.0.1 and each port the one the test waggle listens on for it."""
    # Which listener serves each of the image's ports (4318 → otlp_http, 2000 → xray_udp/tcp).
    image_ports = {}
    for name, endpoint in listener_endpoints(waggle_config(["config"], image_env())).items():
        image_ports.setdefault(port_of(endpoint), []).append(name)

    def address_for(host, port):
        assert host == "waggle", f"the app reaches {host!r}, not the waggle service"
        listeners = image_ports.get(port)
        assert listeners, f"the app uses port {port}, on which the image has no listener ({image_ports})"
        if set(listeners) == {"xray_udp", "xray_tcp"}:
            return f"127.0.0.1:{xray_port}"
        (listener,) = listeners
        return waggle.addresses[listener]

    env = {}
    for key, value in service_environment(APP_SERVICE).items():
        if key == "OTEL_EXPORTER_OTLP_ENDPOINT":
            url = urlsplit(value)
            value = f"{url.scheme}://{address_for(url.hostname, url.port)}{url.path}"
        elif key == "AWS_XRAY_DAEMON_ADDRESS":
            host, _, port = value.rpartition(":")
            value = address_for(host, int(port))
        env[key] = value
    return env


@pytest.mark.slow
def test_example_app_with_the_compose_environment_reaches_the_local_store(tmp_path):
    """The quick start: with nothing set on the host, the app's telemetry lands in the local
    store, where the README tells users to look (`/api/traces`, `/api/logs`)."""
    factory = WaggleFactory(tmp_path)
    try:
        waggle_env = {key: interpolate(value, host_env={}) for key, value in service_environment("waggle").items()}
        for attempt in range(3):
            xray_port = free_udp_and_tcp_port()
            xray = {"endpoint": f"127.0.0.1:{xray_port}"}
            try:
                waggle = factory({"receivers": {"xray_udp": xray, "xray_tcp": xray}}, env=waggle_env)
                break
            except WaggleError:
                if attempt == 2:
                    raise  # the port was taken in between three times: report it

        destinations = {d["name"]: d for d in waggle.get_json("/status")["destinations"]}
        assert destinations["local"]["enabled"] is True
        assert destinations["honeycomb"]["enabled"] is False and destinations["xray"]["enabled"] is False, destinations

        app_env = compose_app_env_for(waggle, xray_port)
        assert set(app_env) == set(APP_WIRING)
        report = run_driver(app_env, "--requests", "2", "--notifications", "1")

        assert [r["status"] for r in report["responses"]] == [200, 200, 200]
        failed = [e for e in report["exports"] if e["result"] != "SUCCESS"]
        assert not failed, f"exports refused: {failed}\n{report['stderr'][-3000:]}"

        # OpenTelemetry traces: every span, and every trace listed under the app's service.
        otel_traces = {}
        for span in report["spans"]:
            otel_traces.setdefault(span["trace_id"], set()).add(span["span_id"])
        assert len(otel_traces) == 3
        for trace_id, span_ids in otel_traces.items():
            assert set(waggle.wait_for_spans(trace_id, len(span_ids))) == span_ids

        def listed():
            ids = {t["trace_id"] for t in waggle.traces(service=APP_SERVICE)}
            return ids if set(otel_traces) <= ids else None

        wait_for(listed, what="the app's traces in /api/traces?service=backend-flask")

        # X-Ray segments from the X-Ray SDK, through AWS_XRAY_DAEMON_ADDRESS.
        entities = xray_entities(parse_xray_datagrams(report["xray_datagrams"]))
        xray_traces = {}
        for entity in entities:
            xray_traces.setdefault(entity["trace_id"], set()).add(entity["id"])
        assert len(xray_traces) == 3, report["xray_datagrams"]
        for trace_id, ids in xray_traces.items():
            assert set(waggle.wait_for_spans(trace_id, len(ids))) == ids

        # What the README tells users to look at: both SDKs' traces under the app's service.
        every_trace = set(otel_traces) | {xray_to_otlp_trace_id(trace_id) for trace_id in xray_traces}

        def all_listed():
            ids = {t["trace_id"] for t in waggle.traces(service=APP_SERVICE)}
            return every_trace <= ids

        wait_for(all_listed, what="the OpenTelemetry and X-Ray traces in /api/traces?service=backend-flask")

        # Logs: every record the app emitted, under its service.
        emitted = {(log["trace_id"], log["span_id"], log["body"]) for log in report["logs"]}
        assert len(emitted) == 2 * 2 + 1  # per home request: custom span's line + access line

        def stored_logs():
            stored = {(log["trace_id"], log["span_id"], log["body"]) for log in waggle.logs(service=APP_SERVICE)}
            return emitted <= stored

        wait_for(stored_logs, what="every log record of the app in /api/logs")

        # Metrics: the app's request counter.
        wait_for(
            lambda: waggle.metrics_list(name="app.activities.requests"),
            what="app.activities.requests in /api/metrics",
        )
    finally:
        factory.teardown()


# ---- Dockerfile ------------------------------------------------------------------------------


def test_image_builds_with_the_command_ci_builds_and_tests():
    """The build stage's `cargo build` is, word for word, the release build scripts/test runs,
    and scripts/test runs the end-to-end tests against that binary: the image ships what CI
    proved."""
    build_stage = stages(dockerfile_instructions())[0]
    image_builds = [
        command
        for keyword, arguments in build_stage
        if keyword == "RUN"
        for command in cargo_build_commands(strip_flags(arguments))
    ]
    assert len(image_builds) == 1, f"the build stage should run one cargo build, runs {image_builds}"
    (image_build,) = image_builds
    ci_builds = ci_build_commands()
    assert len(ci_builds) == 1, f"scripts/test should run one release cargo build, runs {ci_builds}"
    assert normalized_command(image_build) == normalized_command(ci_builds[0])
    assert {"--release", "--locked"} <= set(image_build.split())

    ci_script = CI_SCRIPT.read_text()
    assert re.search(r'WAGGLE_BIN="\$PWD/target/release/waggle"[^\n]*pytest', ci_script), (
        "scripts/test should run the end-to-end tests against target/release/waggle"
    )
    # The runtime stage gets that binary (target/release/waggle of the build stage).
    build_text = "\n".join(arguments for keyword, arguments in build_stage if keyword == "RUN")
    assert "target/release/waggle" in build_text
    (entrypoint,) = [a for k, a in stages(dockerfile_instructions())[-1] if k == "ENTRYPOINT"]
    assert exec_form(entrypoint, "ENTRYPOINT")[0] in build_text.replace("/rootfs", "")


def test_dependency_builds_are_cached_across_code_changes_and_the_binary_is_stripped():
    """The build step mounts Cargo's registry and target directory as BuildKit caches (per
    platform, so amd64 and arm64 builds never share one), and installs the binary stripped."""
    instructions = dockerfile_instructions()
    assert DOCKERFILE.read_text().startswith("# syntax=docker/dockerfile:1"), "cache mounts need the v1 syntax"
    [build_run] = [a for k, a in stages(instructions)[0] if k == "RUN" and "cargo build" in a]
    mounts = [word for word in build_run.split() if word.startswith("--mount=")]
    targets = {dict(o.split("=", 1) for o in m[len("--mount=") :].split(","))["target"]: m for m in mounts}
    assert set(targets) == {"/usr/local/cargo/registry", "/src/target"}, mounts
    assert all("type=cache" in mount for mount in mounts), mounts
    assert "$TARGETPLATFORM" in targets["/src/target"], "one target cache per platform"
    assert re.search(r"install\s+[^&]*-s\s+target/release/waggle", build_run), "the binary is installed stripped"


def test_image_carries_oci_labels_with_the_crate_version_and_licence():
    labels = {}
    for word in shlex.split(runtime_instruction("LABEL")):
        key, _, value = word.partition("=")
        labels[key] = value
    cargo = tomllib.loads((DOCKERFILE.parent / "Cargo.toml").read_text())["package"]
    [version_arg] = [a for k, a in stages(dockerfile_instructions())[-1] if k == "ARG" and a.startswith("VERSION=")]
    assert version_arg == f"VERSION={cargo['version']}"
    assert labels["org.opencontainers.image.version"] == "$VERSION"
    assert labels["org.opencontainers.image.licenses"] == cargo["license"]
    assert labels["org.opencontainers.image.title"] == "waggle"
    assert labels["org.opencontainers.image.description"]


def test_runtime_stage_is_minimal_and_not_root():
    runtime = stages(dockerfile_instructions())[-1]
    base = runtime[0][1]
    assert base.startswith("gcr.io/distroless/") and base.endswith(":nonroot"), base
    assert runtime_instruction("USER") in ("nonroot", "65532", "nonroot:nonroot", "65532:65532")
    assert not [a for k, a in runtime if k == "RUN"], "the runtime stage has no shell to RUN with"


def test_image_listens_on_all_interfaces_and_exposes_exactly_its_ports():
    config = waggle_config(["config"], image_env())
    endpoints = listener_endpoints(config)
    enabled = {
        name
        for name, section in [*config["receivers"].items(), ("admin", config["admin"])]
        if section.get("enabled", True)
    }
    assert enabled == set(endpoints), "a listener is disabled in the image"
    not_all = {name: endpoint for name, endpoint in endpoints.items() if not endpoint.startswith("0.0.0.0:")}
    assert not not_all, f"in the image these listeners would be unreachable from other containers: {not_all}"
    assert config["data_dir"] == image_env()["WAGGLE_DATA_DIR"]

    exposed = {port if "/" in port else f"{port}/tcp" for port in runtime_instruction("EXPOSE").split()}
    listening = {f"{port_of(e)}/{'udp' if name.endswith('_udp') else 'tcp'}" for name, e in endpoints.items()}
    assert exposed == listening == {"2000/udp", "2000/tcp", "4317/tcp", "4318/tcp", "13133/tcp"}


def test_daemon_compose_command_runs_with_the_image_entrypoint_and_healthcheck_works(tmp_path):
    """`command: xray -o -b xray-daemon:2000` appended to the image's ENTRYPOINT: waggle
    starts, binds the X-Ray UDP receiver where -b says (a host name, resolved as the daemon
    does), takes segments there; the HEALTHCHECK command says healthy, then unhealthy once
    waggle has stopped."""
    entrypoint = exec_form(runtime_instruction("ENTRYPOINT"), "ENTRYPOINT")
    healthcheck = runtime_instruction("HEALTHCHECK")
    assert " CMD " in f" {healthcheck} "
    health_command = exec_form(healthcheck.split(" CMD ", 1)[1].strip(), "HEALTHCHECK CMD")
    assert health_command[0] == entrypoint[0] and health_command[1:] == ["health"]

    binary = str(waggle_binary())
    health_argv = [binary, *health_command[1:]]
    health_env = dict(image_env())
    # "localhost" stands for the compose service's own name (xray-daemon), a host name.
    argv = [binary, *entrypoint[1:], "xray", "-o", "-b", "localhost:0"]
    factory = WaggleFactory(tmp_path)
    waggle = ImageWaggle(tmp_path, argv, loopback_image_env(tmp_path / "data"), name="image-waggle")
    factory.started.append(waggle)
    try:
        waggle.start()
        host, port = waggle.udp_address
        assert host in ("127.0.0.1", "::1"), waggle.addresses
        assert waggle.get_json("/status")  # admin answers

        trace_id = new_xray_trace_id()
        segment = xray_segment(name="daemon-command", trace_id=trace_id)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as udp:
            udp.sendto(xray_datagram(segment), (host, port))
        assert segment["id"] in waggle.wait_for_spans(trace_id, 1)

        # The health check as Docker runs it: the image's environment, admin on 0.0.0.0.
        admin_port = port_of(waggle.addresses["admin"])
        health_env["WAGGLE_ADMIN__ENDPOINT"] = f"0.0.0.0:{admin_port}"
        healthy = subprocess.run(health_argv, env=clean_environment(health_env), capture_output=True, timeout=30)
        assert healthy.returncode == 0, healthy.stderr.decode()[-2000:]
    finally:
        factory.teardown()
    unhealthy = subprocess.run(health_argv, env=clean_environment(health_env), capture_output=True, timeout=30)
    assert unhealthy.returncode != 0


# How most bootcamp write-ups spell the daemon's service: `command:` as a list of ONE string.
DAEMON_SERVICE_LIST_FORM = """
xray-daemon:
  image: "amazon/aws-xray-daemon"
  command:
    - "xray -o -b xray-daemon:2000"
  ports:
    - 2000:2000/udp
"""


def test_daemon_command_in_compose_list_form_runs_with_the_image_entrypoint(tmp_path):
    command = yaml.safe_load(DAEMON_SERVICE_LIST_FORM)["xray-daemon"]["command"]
    assert command == ["xray -o -b xray-daemon:2000"]
    # The service's own name stands for a host name; loopback here.
    command = [argument.replace("xray-daemon:2000", "localhost:0") for argument in command]
    entrypoint = exec_form(runtime_instruction("ENTRYPOINT"), "ENTRYPOINT")
    argv = [str(waggle_binary()), *entrypoint[1:], *command]
    factory = WaggleFactory(tmp_path)
    waggle = ImageWaggle(tmp_path, argv, loopback_image_env(tmp_path / "data"), name="list-form-waggle")
    factory.started.append(waggle)
    try:
        waggle.start()
        assert waggle.get_json("/status")
    finally:
        factory.teardown()


def test_binary_answers_to_the_daemons_own_entrypoint_as_xray(tmp_path):
    """The image links /usr/bin/xray and /xray to waggle for users who override the entrypoint
    with the daemon's `["/usr/bin/xray", "-t", "0.0.0.0:2000", "-b", "0.0.0.0:2000"]`."""
    build_stage_text = "\n".join(a for k, a in stages(dockerfile_instructions())[0] if k == "RUN")
    for path in ("/xray", "/usr/bin/xray"):
        assert f"ln -s /usr/local/bin/waggle /rootfs{path}" in build_stage_text, path
    link = tmp_path / "xray"
    link.symlink_to(waggle_binary())
    completed = subprocess.run(
        [str(link), "-t", "0.0.0.0:2000", "-b", "0.0.0.0:2000", "-o", "config"],
        env=clean_environment(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert completed.returncode == 0, completed.stderr
    config = tomllib.loads(completed.stdout)
    assert config["receivers"]["xray_udp"]["endpoint"] == "0.0.0.0:2000"
    assert config["receivers"]["xray_tcp"]["endpoint"] == "0.0.0.0:2000"
    assert config["destinations"]["xray"]["local_mode"] is True
