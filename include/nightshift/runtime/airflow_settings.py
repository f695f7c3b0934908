"""Load `airflow_settings.yaml` (the Astro CLI format) into any Airflow install, through the `airflow` CLI.

The Astro CLI loads this file into its own local Airflow; a plain Airflow install (the compose stack, a VM)
has no such step. This module parses and validates the file, then loads it with the `airflow` command line
as subprocesses, so it never imports Airflow and works against whatever metadata database the environment
configures:

* connections: `airflow connections import --overwrite` from a private temporary JSON file (inserts new
  ids, replaces every field of existing ones; passwords never appear on a command line),
* variables: `airflow variables import --action-on-existing-key overwrite`, likewise,
* pools: `airflow pools set NAME SLOTS DESCRIPTION` (creates or updates).

Loading twice gives the same result, and a changed value in the file replaces the stored one. A connection
or variable the environment already defines (`AIRFLOW_CONN_<ID>`, `AIRFLOW_VAR_<NAME>`) is skipped and
reported: Airflow reads the environment before its database, so a stored copy would never be used.

The file format (https://www.astronomer.io/docs/astro/cli/develop-project#configure-airflow_settingsyaml-local-development-only)::

    airflow:
      connections:
        - conn_id: my_postgres        # required
          conn_type: postgres         # required unless conn_uri is given
          conn_host: db
          conn_schema: mydb
          conn_login: user
          conn_password: secret
          conn_port: 5432
          conn_extra: {key: value}    # a mapping, or a JSON object as a string
        - conn_id: by_uri
          conn_uri: postgresql://user:secret@db:5432/mydb   # alone, instead of the fields above
      pools:
        - pool_name: my_pool
          pool_slot: 2
          pool_description: what it limits
      variables:
        - variable_name: my_var
          variable_value: a string
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

CONNECTION_FIELDS = {
    "conn_id",
    "conn_type",
    "conn_host",
    "conn_schema",
    "conn_login",
    "conn_password",
    "conn_port",
    "conn_uri",
    "conn_extra",
}
POOL_FIELDS = {"pool_name", "pool_slot", "pool_description"}
VARIABLE_FIELDS = {"variable_name", "variable_value"}
SECTIONS = ("connections", "pools", "variables")
# What Airflow accepts as a connection id, variable key or pool name (airflow.utils.helpers.KEY_REGEX).
KEY_PATTERN = re.compile(r"^[\w.-]+$")
SENSITIVE_NAME = re.compile(r"pass|secret|token|key|credential|private", re.IGNORECASE)


class AirflowSettingsError(ValueError):
    """A settings file that cannot be used, or a load that failed; the message names the file and entry."""


@dataclass(frozen=True)
class ConnectionSetting:
    conn_id: str
    conn_type: str | None = None
    host: str | None = None
    schema: str | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    port: int | None = None
    extra: dict[str, Any] | None = field(default=None, repr=False)
    uri: str | None = field(default=None, repr=False)

    def import_value(self) -> str | dict[str, Any]:
        """The entry `airflow connections import` reads: a URI string, or the connection's fields."""
        if self.uri is not None:
            return self.uri
        fields: dict[str, Any] = {
            "conn_type": self.conn_type,
            "host": self.host,
            "schema": self.schema,
            "login": self.login,
            "password": self.password,
            "port": self.port,
            "extra": json.dumps(self.extra, sort_keys=True) if self.extra is not None else None,
        }
        return {key: value for key, value in fields.items() if value is not None}

    def describe(self) -> str:
        """One line for humans; never shows the login, password or URI."""
        if self.uri is not None:
            return f"{self.conn_id} (from conn_uri)"
        parts = [self.conn_type or "?"]
        if self.host:
            parts.append(f"host {self.host}" + (f":{self.port}" if self.port else ""))
        if self.schema:
            parts.append(f"schema {self.schema}")
        if self.extra:
            endpoint = self.extra.get("endpoint_url")
            parts.append(f"endpoint {endpoint}" if endpoint else f"extra {', '.join(sorted(self.extra))}")
        return f"{self.conn_id} ({', '.join(parts)})"


@dataclass(frozen=True)
class PoolSetting:
    name: str
    slots: int
    description: str = ""


@dataclass(frozen=True)
class VariableSetting:
    name: str
    value: str = field(repr=False)

    def describe(self) -> str:
        shown = "***" if SENSITIVE_NAME.search(self.name) else self.value
        return f"{self.name} = {shown}"


@dataclass(frozen=True)
class AirflowSettings:
    path: Path
    connections: tuple[ConnectionSetting, ...] = ()
    pools: tuple[PoolSetting, ...] = ()
    variables: tuple[VariableSetting, ...] = ()

    def connection(self, conn_id: str) -> ConnectionSetting | None:
        return next((conn for conn in self.connections if conn.conn_id == conn_id), None)

    def pool(self, name: str) -> PoolSetting | None:
        return next((pool for pool in self.pools if pool.name == name), None)

    def variable(self, name: str) -> VariableSetting | None:
        return next((var for var in self.variables if var.name == name), None)


@dataclass
class LoadReport:
    """What a load did: the entries written, and those skipped because the environment defines them."""

    path: Path
    connections: list[ConnectionSetting] = field(default_factory=list)
    variables: list[VariableSetting] = field(default_factory=list)
    pools: list[PoolSetting] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"loaded {self.path} into Airflow:"]
        out += [f"  connection {conn.describe()}" for conn in self.connections]
        out += [f"  variable   {var.describe()}" for var in self.variables]
        out += [
            f"  pool       {pool.name}: {pool.slots} slot{'s' if pool.slots != 1 else ''}"
            + (f" ({pool.description})" if pool.description else "")
            for pool in self.pools
        ]
        out += [f"  skipped    {reason}" for reason in self.skipped]
        if len(out) == 1:
            out.append("  nothing: the file defines no connections, variables or pools")
        return out


# -- parsing and validation ------------------------------------------------------------------------------


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"  - {where}: {message}")


def _entry_label(section: str, index: int, entry: Any, key: str) -> str:
    name = entry.get(key) if isinstance(entry, dict) else None
    return f"airflow.{section}[{index}]" + (f" ({name})" if isinstance(name, str) and name else "")


def _text(entry: dict[str, Any], key: str, where: str, problems: _Problems) -> str | None:
    value = entry.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    problems.add(where, f"{key}: must be a string; put it in quotes (got {value!r})")
    return None


def _key(entry: dict[str, Any], key: str, where: str, problems: _Problems, max_length: int = 200) -> str | None:
    value = entry.get(key)
    if value is None or value == "":
        problems.add(where, f"{key}: required field is missing")
        return None
    if not isinstance(value, str):
        problems.add(where, f"{key}: must be a string (got {value!r})")
        return None
    if not KEY_PATTERN.match(value) or ".." in value or len(value) > max_length:
        problems.add(
            where,
            f"{key}: {value!r} is not a valid Airflow id: use letters, digits, '_', '-' and '.' only, "
            f"no '..', at most {max_length} characters",
        )
        return None
    return value


def _unknown(entry: dict[str, Any], allowed: set[str], where: str, problems: _Problems) -> None:
    for key in sorted(set(entry) - allowed, key=str):
        problems.add(where, f"unknown field {key!r}; valid fields: {', '.join(sorted(allowed))}")


def _connection(entry: dict[str, Any], where: str, problems: _Problems) -> ConnectionSetting | None:
    before = len(problems.items)
    _unknown(entry, CONNECTION_FIELDS, where, problems)
    conn_id = _key(entry, "conn_id", where, problems)
    uri = _text(entry, "conn_uri", where, problems)
    conn_type = _text(entry, "conn_type", where, problems)
    host = _text(entry, "conn_host", where, problems)
    schema = _text(entry, "conn_schema", where, problems)
    login = _text(entry, "conn_login", where, problems)
    password = _text(entry, "conn_password", where, problems)

    port = _port(entry.get("conn_port"), where, problems)
    extra = _extra(entry.get("conn_extra"), where, problems)

    others = [key for key in sorted(CONNECTION_FIELDS - {"conn_id", "conn_uri"}) if entry.get(key) not in (None, "")]
    if uri is not None and others:
        problems.add(
            where, f"conn_uri: give either conn_uri alone or the separate fields, not both (also set: {others})"
        )
    if uri is None and entry.get("conn_type") in (None, ""):
        problems.add(where, "conn_type: required field is missing (or give conn_uri instead)")

    if len(problems.items) > before or conn_id is None:
        return None
    return ConnectionSetting(
        conn_id=conn_id,
        conn_type=conn_type,
        host=host,
        schema=schema,
        login=login,
        password=password,
        port=port,
        extra=extra,
        uri=uri,
    )


def _port(port: Any, where: str, problems: _Problems) -> int | None:
    if port == "":
        return None
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535):
        problems.add(where, f"conn_port: must be an integer between 1 and 65535 (got {port!r})")
        return None
    return port


def _extra(extra: Any, where: str, problems: _Problems) -> dict[str, Any] | None:
    if extra == "":
        return None
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except json.JSONDecodeError as exc:
            problems.add(where, f"conn_extra: not valid JSON ({exc}); write it as a YAML mapping instead")
            return None
    if extra is not None and not isinstance(extra, dict):
        problems.add(where, f"conn_extra: must be a mapping of extra fields (got {extra!r})")
        return None
    return extra


def _pool(entry: dict[str, Any], where: str, problems: _Problems) -> PoolSetting | None:
    before = len(problems.items)
    _unknown(entry, POOL_FIELDS, where, problems)
    name = _key(entry, "pool_name", where, problems, max_length=256)
    slots = entry.get("pool_slot")
    if slots is None or slots == "":
        problems.add(where, "pool_slot: required field is missing (the number of slots, e.g. 1)")
    elif isinstance(slots, bool) or not isinstance(slots, int) or slots < 0:
        problems.add(where, f"pool_slot: must be a whole number of slots, 0 or more (got {slots!r})")
    description = _text(entry, "pool_description", where, problems) or ""
    if len(problems.items) > before or name is None or not isinstance(slots, int):
        return None
    return PoolSetting(name=name, slots=slots, description=description)


def _variable(entry: dict[str, Any], where: str, problems: _Problems) -> VariableSetting | None:
    before = len(problems.items)
    _unknown(entry, VARIABLE_FIELDS, where, problems)
    name = _key(entry, "variable_name", where, problems, max_length=250)
    value = entry.get("variable_value")
    if value is None:
        problems.add(where, "variable_value: required field is missing")
    elif isinstance(value, bool) or not isinstance(value, str | int | float):
        problems.add(where, f"variable_value: must be a string; put it in quotes (got {value!r})")
    if len(problems.items) > before or name is None or value is None:
        return None
    return VariableSetting(name=name, value=str(value))


def _section(
    section: str,
    entries: Any,
    id_key: str,
    parse: Callable[[dict[str, Any], str, _Problems], Any],
    problems: _Problems,
) -> list[Any]:
    """The section's valid entries, in order; every problem (a bad entry, a repeated id) goes to `problems`."""
    if not isinstance(entries, list):
        problems.add(f"airflow.{section}", f"must be a list of entries (got {type(entries).__name__})")
        return []
    items: list[Any] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        where = _entry_label(section, index, entry, id_key)
        if not isinstance(entry, dict):
            problems.add(where, f"each entry must be a mapping with {id_key!r} and its fields (got {entry!r})")
            continue
        item = parse(entry, where, problems)
        if item is None:
            continue
        name = entry[id_key]
        if name in seen:
            problems.add(where, f"{id_key} {name!r} is defined twice (first at airflow.{section}[{seen[name]}])")
            continue
        seen[name] = index
        items.append(item)
    return items


def parse_settings(raw: Any, path: Path | str) -> AirflowSettings:
    """Validate already-parsed YAML; raise AirflowSettingsError listing every problem with its entry."""
    path = Path(path)
    if raw is None:
        raise AirflowSettingsError(f"{path}: the file is empty; expected a top-level 'airflow:' mapping")
    if not isinstance(raw, dict) or "airflow" not in raw:
        raise AirflowSettingsError(
            f"{path}: expected a top-level 'airflow:' mapping with 'connections', 'pools' and 'variables' lists"
        )
    problems = _Problems()
    for key in sorted(set(raw) - {"airflow"}, key=str):
        problems.add("(top level)", f"unknown key {key!r}; only 'airflow' is read")
    body = raw["airflow"] or {}
    if not isinstance(body, dict):
        raise AirflowSettingsError(f"{path}: 'airflow' must be a mapping of {', '.join(SECTIONS)} (got {body!r})")
    for key in sorted(set(body) - set(SECTIONS), key=str):
        problems.add("airflow", f"unknown section {key!r}; valid sections: {', '.join(SECTIONS)}")

    parsers: dict[str, tuple[str, Callable[[dict[str, Any], str, _Problems], Any]]] = {
        "connections": ("conn_id", _connection),
        "pools": ("pool_name", _pool),
        "variables": ("variable_name", _variable),
    }
    parsed = {
        section: _section(section, body.get(section) or [], id_key, parse, problems)
        for section, (id_key, parse) in parsers.items()
    }

    if problems.items:
        raise AirflowSettingsError(f"{path}: invalid Airflow settings:\n" + "\n".join(problems.items))
    return AirflowSettings(
        path=path,
        connections=tuple(parsed["connections"]),
        pools=tuple(parsed["pools"]),
        variables=tuple(parsed["variables"]),
    )


def load_settings(path: Path | str) -> AirflowSettings:
    """Read and validate an airflow_settings.yaml file."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise AirflowSettingsError(f"{path}: Airflow settings file not found") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AirflowSettingsError(f"{path}: not valid YAML: {exc}") from None
    return parse_settings(raw, path)


# -- loading into Airflow -------------------------------------------------------------------------------

Runner = Callable[[Sequence[str], Mapping[str, str]], "subprocess.CompletedProcess[str]"]
_Entry = TypeVar("_Entry", ConnectionSetting, VariableSetting)


def airflow_binary() -> str:
    """The `airflow` next to this interpreter (a virtualenv), else the one on PATH."""
    return shutil.which("airflow", path=str(Path(sys.executable).parent)) or shutil.which("airflow") or "airflow"


def _run(args: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), env=dict(env), capture_output=True, text=True, check=False)


def env_connection_name(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def env_variable_name(name: str) -> str:
    return f"AIRFLOW_VAR_{name.upper()}"


class _Airflow:
    def __init__(self, binary: str, env: Mapping[str, str], run: Runner, path: Path) -> None:
        self.binary, self.env, self.run, self.path = binary, env, run, path

    def __call__(self, *args: str) -> str:
        done = self.run([self.binary, *args], self.env)
        if done.returncode != 0:
            raise AirflowSettingsError(
                f"{self.path}: `airflow {' '.join(args[:2])}` failed with exit code {done.returncode}; is the "
                "metadata database reachable and migrated (`airflow db migrate`)?\n"
                f"{(done.stdout or '')[-2000:]}\n{(done.stderr or '')[-3000:]}".rstrip()
            )
        return done.stdout or ""


def _write_private_json(folder: Path, name: str, payload: Any) -> Path:
    target = folder / name
    handle = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(handle, "w") as out:
        json.dump(payload, out)
    return target


def _not_in_environment(
    entries: Sequence[_Entry],
    kind: str,
    name_of: Callable[[_Entry], str],
    env_name: Callable[[str], str],
    env: Mapping[str, str],
    skipped: list[str],
) -> list[_Entry]:
    """The entries the environment does not define; for each one it does, a line in `skipped` (it wins anyway)."""
    kept = []
    for entry in entries:
        name = name_of(entry)
        if env.get(env_name(name)):
            skipped.append(
                f"{kind} {name}: {env_name(name)} is set in the environment and wins over the metadata database"
            )
        else:
            kept.append(entry)
    return kept


def apply_settings(
    settings: AirflowSettings,
    env: Mapping[str, str] | None = None,
    airflow: str | None = None,
    run: Runner = _run,
) -> LoadReport:
    """Load connections, variables and pools into the Airflow that `env` configures (default: this process's)."""
    env = dict(os.environ if env is None else env)
    cli = _Airflow(airflow or airflow_binary(), env, run, settings.path)
    report = LoadReport(path=settings.path)

    connections = _not_in_environment(
        settings.connections, "connection", lambda conn: conn.conn_id, env_connection_name, env, report.skipped
    )
    variables = _not_in_environment(
        settings.variables, "variable", lambda var: var.name, env_variable_name, env, report.skipped
    )

    with tempfile.TemporaryDirectory(prefix="nightshift-airflow-settings-") as staging:
        folder = Path(staging)
        if connections:
            payload = {conn.conn_id: conn.import_value() for conn in connections}
            out = cli(
                "connections", "import", "--overwrite", str(_write_private_json(folder, "connections.json", payload))
            )
            imported = {line.strip() for line in out.splitlines()}
            missing = [conn.conn_id for conn in connections if f"Imported connection {conn.conn_id}" not in imported]
            if missing:
                raise AirflowSettingsError(
                    f"{settings.path}: Airflow did not import connection(s) {missing}:\n{out[-2000:]}"
                )
            report.connections = connections
        if variables:
            payload = {var.name: var.value for var in variables}
            out = cli(
                "variables",
                "import",
                "--action-on-existing-key",
                "overwrite",
                str(_write_private_json(folder, "variables.json", payload)),
            )
            if f"{len(variables)} of {len(variables)} variables successfully updated" not in out:
                raise AirflowSettingsError(f"{settings.path}: Airflow did not import every variable:\n{out[-2000:]}")
            report.variables = variables
    for pool in settings.pools:
        cli("pools", "set", pool.name, str(pool.slots), pool.description)
        report.pools.append(pool)
    return report


def load_into_airflow(path: Path | str, env: Mapping[str, str] | None = None, airflow: str | None = None) -> LoadReport:
    """Validate the file, then load it; nothing is written when the file is invalid."""
    return apply_settings(load_settings(path), env=env, airflow=airflow)
