"""deploy/: what can be checked without Docker (Docker does not run on the CI machine).

The Dockerfile is multi-stage, runs as a non-root user and copies only paths that exist
in the repository; the compose file parses and wires the application to PostgreSQL.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_is_multistage_non_root_and_copies_existing_paths():
    ins = _instructions(DEPLOY / "Dockerfile")
    froms = [i for i, (w, _) in enumerate(ins) if w == "FROM"]
    assert len(froms) >= 2, "multi-stage build expected"
    stages = {a.split()[-1].lower() for w, a in ins if w == "FROM" and " as " in a.lower()}
    copies = 0
    for w, args in ins:
        if w not in ("COPY", "ADD"):
            continue
        parts = shlex.split(args)
        from_stage = [p for p in parts if p.startswith("--from=")]
        sources = [p for p in parts if not p.startswith("--")][:-1]
        if from_stage:
            assert from_stage[0].split("=", 1)[1].lower() in stages
            continue
        for src in sources:
            copies += 1
            assert (ROOT / src).exists(), f"Dockerfile copies {src}, which is not in the repository"
    assert copies >= 5
    final = ins[froms[-1]:]
    users = [a for w, a in final if w == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0"), "the runtime stage must switch to a non-root user"
    entry = [a for w, a in final if w == "ENTRYPOINT"]
    assert entry and "creditdb" in entry[-1]
    # the wheel built in stage 1 carries every package the pyproject lists
    pyproject = (ROOT / "pyproject.toml").read_text()
    for pkg in re.findall(r'"(\w+)\*"', pyproject):
        assert any(w == "COPY" and a.split()[0] == pkg for w, a in ins), f"package {pkg} not copied into the build"


def test_compose_parses_and_wires_app_to_postgres():
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = doc["services"]
    assert {"db", "app"} <= set(services)
    db, app = services["db"], services["app"]
    assert db["image"].startswith("postgres:")
    assert "healthcheck" in db and "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert any(str(v).endswith(":/var/lib/postgresql/data") for v in db["volumes"])
    build = app["build"]
    context = (DEPLOY / build["context"]).resolve()
    assert (context / build["dockerfile"]).resolve() == (DEPLOY / "Dockerfile").resolve()
    assert app["depends_on"]["db"]["condition"] == "service_healthy"
    url = app["environment"]["CREDITDB_URL"]
    assert url.startswith("postgresql+psycopg://") and "@db:5432/" in url
    # secrets are not baked into the file: each is a required or defaulted variable reference
    assert "${POSTGRES_PASSWORD" in db["environment"]["POSTGRES_PASSWORD"]
    named = set(doc.get("volumes", {}))
    for v in db["volumes"]:
        src = str(v).split(":", 1)[0]
        assert src.startswith("./") or src in named, f"volume {src} is neither a bind path nor declared"


def test_operations_guide_covers_the_procedures():
    guide = (DEPLOY / "OPERATIONS.md").read_text()
    for heading in ("First start", "Adding an institution", "Backup and restore", "Key rotation", "Upgrading"):
        assert re.search(rf"^## {heading}", guide, re.M), heading
    assert "pg_dump" in guide and "pg_restore" in guide and "creditdb init" in guide


def test_every_data_file_of_the_packages_ships_in_the_wheel():
    """A data file the code reads (SQL, suites, specs, schedules) must match package-data,
    or an installed creditdb fails where the source checkout works (e.g. `creditdb init`
    on PostgreSQL needs creditdb/sql/*.sql)."""
    import fnmatch
    import tomllib

    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    checked = 0
    for package, patterns in cfg.items():
        base = ROOT / package
        for path in base.rglob("*"):
            if not path.is_file() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            rel = path.relative_to(base).as_posix()
            checked += 1
            assert any(fnmatch.fnmatch(rel, p) for p in patterns), f"{package}/{rel} is not in package-data"
    assert checked >= 10
