#!/usr/bin/env python3
"""Consistency checks of the container deployment, for scripts/lint-deploy.sh.

No Docker engine runs where this repository is tested, so this keeps the files that
describe the containers honest against what can be read and run here:

  docker-compose.yml (as Docker Compose's own loader normalised it, --compose-json),
  payment-service/Dockerfile and notification-service/Dockerfile, .dockerignore,
  the binaries' --help (the environment variables they read), the Postgres init SQL,
  the LocalStack init hook, the Makefile and the README's "Docker" section.

Usage:
  deploy_checks.py check --compose-json FILE --bin-dir DIR
      every check below; prints one line per check, exits 1 if any failed
  deploy_checks.py service-env --compose-json FILE SERVICE --map FROM=TO ...
        [--database-base URL --database-prefix P] [--bind HOST:PORT]
      the environment a container of SERVICE starts with (its image's ENV, then
      compose's), NUL-separated NAME=VALUE, each FROM replaced by TO; for
      scripts/compose-rehearsal.sh
  deploy_checks.py healthcheck-cmd DOCKERFILE
      the argv of the Dockerfile's HEALTHCHECK CMD, NUL-separated
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent

# Read by tracing-subscriber's EnvFilter (shared/src/telemetry.rs), so not in --help.
# Checked below against the binary, so this list cannot silently go stale.
EXTRA_ENV = {"RUST_LOG"}

failures = []


def report(ok, name, detail=""):
    line = f"  {'ok  ' if ok else 'FAIL'}  {name}"
    if detail and not ok:
        line += "\n" + "\n".join(f"          {d}" for d in detail.splitlines())
    print(line, flush=True)
    if not ok:
        failures.append(name)


def check(name):
    """Decorator: run the function, which returns a list of problems (empty: ok)."""

    def wrap(fn):
        def run(*args, **kwargs):
            try:
                problems = fn(*args, **kwargs)
            except Exception as exc:  # a broken check is a failed check
                problems = [f"{type(exc).__name__}: {exc}"]
            report(not problems, name, "\n".join(problems))

        return run

    return wrap


# ------------------------------------------------------------------ Dockerfiles


def dockerfile_instructions(path):
    """[(keyword, arguments)] with line continuations joined and comments dropped."""
    lines, current = [], ""
    for raw in Path(path).read_text().splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        lines.append(current)
        current = ""
    if current:
        lines.append(current)
    out = []
    for line in lines:
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def stages(instructions):
    """[(from_arguments, [instructions])] per FROM."""
    result = []
    for keyword, rest in instructions:
        if keyword == "FROM":
            result.append((rest, []))
        elif result:
            result[-1][1].append((keyword, rest))
    return result


def env_assignments(rest):
    """NAME=VALUE pairs of an ENV instruction (no quotes with spaces used here)."""
    return dict(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\S*)", rest))


def healthcheck_argv(path):
    for keyword, rest in dockerfile_instructions(path):
        if keyword == "HEALTHCHECK":
            _, _, cmd = rest.partition("CMD ")
            try:
                return json.loads(cmd)
            except json.JSONDecodeError:  # NONE, or the shell form
                return None
    return None


# ------------------------------------------------------------------ helpers


def known_env(binary):
    """Environment variables the binary reads, from its --help (clap's [env: X] and the
    AWS SDK variables its help names), plus EXTRA_ENV."""
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30, check=True).stdout
    names = set(re.findall(r"\[env: ([A-Z][A-Z0-9_]*)", out)) | set(re.findall(r"\b(AWS_[A-Z0-9_]+)\b", out))
    return names | EXTRA_ENV, out


def host_port(value):
    """(host, port) of a URL or host:port string, else None."""
    if "://" in value:
        parts = urlsplit(value)
        if parts.hostname and parts.port:
            return parts.hostname, parts.port
        return None
    m = re.fullmatch(r"\[?([A-Za-z0-9_.:-]+?)\]?:(\d+)", value)
    return (m.group(1), int(m.group(2))) if m else None


def readme_docker_section():
    text = (ROOT / "README.md").read_text()
    m = re.search(r"^## Docker\b.*?(?=^## |\Z)", text, re.S | re.M)
    return m.group(0) if m else None


def context_files(dockerfile):
    """Files `docker build .` would send, by docker-py's .dockerignore matcher (the
    classic builder's rules; BuildKit's agree on patterns as simple as ours)."""
    from docker.utils.build import exclude_paths

    ignore = ROOT / ".dockerignore"
    patterns = []
    if ignore.exists():
        patterns = [p.strip() for p in ignore.read_text().splitlines() if p.strip() and not p.strip().startswith("#")]
    return {p for p in exclude_paths(str(ROOT), patterns, dockerfile=dockerfile) if (ROOT / p).is_file()}


# ------------------------------------------------------------------ the checks


def run_checks(compose, bin_dir):
    services = compose["services"]
    built = {name: s for name, s in services.items() if s.get("build")}
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--no-deps", "--format-version", "1"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout
    )
    members = [p for p in metadata["packages"] if p["id"] in set(metadata["workspace_members"])]
    bins = {t["name"]: p for p in members for t in p["targets"] if "bin" in t["kind"]}
    envs = {}

    @check("the services built by compose are the workspace's service binaries")
    def built_services():
        problems = []
        if not built:
            problems.append("no service with build: in docker-compose.yml")
        for name, s in built.items():
            b = s["build"]
            if Path(b["context"]).resolve() != ROOT:
                problems.append(f"{name}: build context {b['context']} is not the repository root (the workspace)")
            dockerfile = ROOT / b.get("dockerfile", "Dockerfile")
            if not dockerfile.is_file():
                problems.append(f"{name}: {dockerfile} does not exist")
            package = dockerfile.parent.name
            if package not in bins or bins[package]["name"] != package:
                problems.append(f"{name}: {dockerfile.relative_to(ROOT)} is not in a package with a binary of the same name")
            if name != package:
                problems.append(f"{name}: the compose service should be named after its binary {package}")
            if not (Path(bin_dir) / package).is_file():
                problems.append(f"{name}: {bin_dir}/{package} is missing; build first (cargo build --workspace)")
        return problems

    built_services()

    for name in built:
        binary = Path(bin_dir) / name
        if binary.is_file():
            envs[name] = known_env(binary)[0]

    @check("RUST_LOG, read outside clap, is really in the binaries")
    def extra_env_in_binaries():
        problems = []
        for name in built:
            data = (Path(bin_dir) / name).read_bytes()
            for var in EXTRA_ENV:
                if var.encode() not in data:
                    problems.append(f"{name} does not contain {var}: remove it from EXTRA_ENV in {Path(__file__).name}")
        return problems

    extra_env_in_binaries()

    @check("every environment variable compose passes is one the binary reads (--help)")
    def compose_env_known():
        problems = []
        for name, s in built.items():
            unknown = sorted(set(s.get("environment") or {}) - envs.get(name, set()))
            if unknown:
                problems.append(f"{name}: {', '.join(unknown)} not in `{name} --help`")
        return problems

    compose_env_known()

    @check("the values compose passes parse (each binary started with them gets past its argument parser)")
    def compose_env_values():
        problems = []
        for name, s in built.items():
            env = {k: v for k, v in (s.get("environment") or {}).items() if v is not None}
            # Nothing may be reached or bound: a closed port for Postgres (start-up stops
            # there, after parsing), loopback port 0 for the listeners.
            env["DATABASE_URL"] = "postgres://postgres@127.0.0.1:1/closed"
            for var in ("LISTEN_ADDR", "HEALTH_ADDR"):
                if var in env:
                    if not host_port(env[var]):
                        problems.append(f"{name}: {var}={env[var]} is not host:port")
                    env[var] = "127.0.0.1:0"
            env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
            try:
                run = subprocess.run([str(Path(bin_dir) / name)], env=env, capture_output=True, text=True, timeout=20)
            except subprocess.TimeoutExpired:
                continue  # still running: it parsed everything and is waiting on something
            err = run.stderr + run.stdout
            if run.returncode == 2 or re.search(r"^error: (invalid value|unexpected argument)|^Usage:", err, re.M):
                problems.append(f"{name}: rejected its compose environment:\n{err.strip()[:800]}")
        return problems

    compose_env_values()

    dockerfiles = {name: ROOT / s["build"].get("dockerfile", "Dockerfile") for name, s in built.items()}

    @check("no compile-time-checked sqlx queries (query! macros) in what the images compile: no database or .sqlx/ needed")
    def offline_build():
        # The Dockerfiles build with SQLX_OFFLINE=true and no database: a query! macro
        # would need the .sqlx/ data of `cargo sqlx prepare`, which this repo does not
        # keep (its queries are sqlx::query, checked at run time by the tests).
        by_name = {p["name"]: p for p in members}
        todo, seen = list(built), set()
        while todo:  # the services and the workspace crates they depend on (not dev-deps)
            name = todo.pop()
            if name in seen or name not in by_name:
                continue
            seen.add(name)
            todo += [d["name"] for d in by_name[name]["dependencies"] if d.get("path") and d.get("kind") is None]
        macro = re.compile(r"\b(?:sqlx::)?query(?:_as|_scalar)?(?:_file(?:_as|_scalar)?)?(?:_unchecked)?!\s*\(")
        problems = []
        if (ROOT / ".sqlx").is_dir():
            return problems
        for name in sorted(seen):
            src = Path(by_name[name]["manifest_path"]).parent / "src"
            for f in sorted(src.rglob("*.rs")):
                for n, line in enumerate(f.read_text().splitlines(), 1):
                    if macro.search(line) and not line.lstrip().startswith("//"):
                        problems.append(f"{f.relative_to(ROOT)}:{n}: {line.strip()[:100]}")
        if problems:
            problems.insert(0, "these need a database or .sqlx/ at build time (use sqlx::query, or commit `cargo sqlx prepare` output):")
        return problems

    offline_build()

    @check("the Dockerfiles: builds its own binary, non-root, exec-form ENTRYPOINT, HEALTHCHECK on /readyz")
    def dockerfile_shape():
        problems = []
        for name, path in dockerfiles.items():
            rel = path.relative_to(ROOT)
            st = stages(dockerfile_instructions(path))
            if len(st) < 2:
                problems.append(f"{rel}: not a multi-stage build")
                continue
            text = path.read_text()
            if not re.search(rf"cargo chef cook .*--package {re.escape(name)}\b", text):
                problems.append(f"{rel}: the dependency layer (cargo chef cook --package {name}) is missing")
            if not re.search(rf"cargo build .*--locked .*--package {re.escape(name)} --bin {re.escape(name)}\b", text):
                problems.append(f"{rel}: no `cargo build --release --locked --package {name} --bin {name}`")
            if "SQLX_OFFLINE=true" not in text:
                problems.append(f"{rel}: SQLX_OFFLINE=true is not set in the builder")
            final = st[-1][1]
            users = [rest for k, rest in final if k == "USER"]
            if not users or users[-1].split(":")[0] in ("root", "0"):
                problems.append(f"{rel}: the runtime stage must end as a non-root USER")
            entry = [rest for k, rest in final if k == "ENTRYPOINT"]
            try:
                argv = json.loads(entry[-1]) if entry else None
            except json.JSONDecodeError:
                argv = None
            if not argv or Path(argv[0]).name != name:
                problems.append(f"{rel}: ENTRYPOINT must be the exec form [\"/.../{name}\"] (so SIGTERM reaches it)")
            hc = healthcheck_argv(path)
            if not hc or "/readyz" not in hc:
                problems.append(f"{rel}: HEALTHCHECK CMD (exec form) against /readyz is missing")
            env = {}
            for k, rest in final:
                if k == "ENV":
                    env.update(env_assignments(rest))
            unknown = sorted(set(env) - envs.get(name, set()))
            if unknown:
                problems.append(f"{rel}: ENV {', '.join(unknown)} not read by {name}")
            if hc and len(hc) == 3:
                addr_var = hc[1]
                addr = env.get(addr_var)
                hp = host_port(addr or "")
                expose = [int(p.split("/")[0]) for k, rest in final if k == "EXPOSE" for p in rest.split()]
                if not hp:
                    problems.append(f"{rel}: the HEALTHCHECK reads ${addr_var}, which no ENV sets to host:port")
                elif hp[0] not in ("0.0.0.0", "::"):
                    problems.append(f"{rel}: {addr_var}={addr} must listen on all interfaces in a container")
                elif hp[1] not in expose:
                    problems.append(f"{rel}: {addr_var} port {hp[1]} is not EXPOSEd ({expose})")
            copies = [rest for k, rest in final if k == "COPY" and not rest.startswith("--from")]
            for rest in copies:
                srcs = [w for w in rest.split() if not w.startswith("--")][:-1]
                for src in srcs:
                    if not (ROOT / src).exists():
                        problems.append(f"{rel}: COPY source {src} does not exist")
        return problems

    dockerfile_shape()

    @check("both Dockerfiles share their toolchain stage (one cached cargo-chef layer) and it meets rust-version")
    def shared_chef_stage():
        problems = []
        firsts = {}
        for name, path in dockerfiles.items():
            st = stages(dockerfile_instructions(path))
            firsts[name] = (st[0][0], st[0][1])
        if len({json.dumps(v) for v in firsts.values()}) > 1:
            problems.append("the first (chef) stages differ: " + "; ".join(f"{n}: {v[0]}" for n, v in firsts.items()))
        workspace = tomllib.loads((ROOT / "Cargo.toml").read_text())
        want = workspace.get("workspace", {}).get("package", {}).get("rust-version")
        for name, (image, _) in firsts.items():
            m = re.match(r"rust:(\d+)\.(\d+)", image)
            if not m:
                problems.append(f"{name}: builder image {image} is not rust:<major>.<minor>-...")
            elif want and tuple(map(int, m.groups())) < tuple(map(int, want.split(".")[:2])):
                problems.append(f"{name}: builder {image} is older than the workspace rust-version {want}")
        return problems

    shared_chef_stage()

    @check(".dockerignore: the build context has the whole workspace and none of target/, .tools/, .git/")
    def build_context():
        problems = []
        for name, path in dockerfiles.items():
            files = context_files(str(path.relative_to(ROOT)))
            listed = subprocess.run(
                ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                cwd=ROOT, capture_output=True, text=True,
            )
            if listed.returncode == 0:
                tracked = listed.stdout.split()
            else:  # not a git checkout: every file but build output
                tracked = [
                    p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*")
                    if p.is_file() and not {"target", ".git", ".tools"} & set(p.relative_to(ROOT).parts)
                ]
            needed = {"Cargo.toml", "Cargo.lock"}
            for p in members:
                member_dir = Path(p["manifest_path"]).parent.relative_to(ROOT).as_posix()
                # Dockerfiles themselves need not be in the context (the builder reads them apart).
                needed |= {f for f in tracked if f.startswith(member_dir + "/") and not f.endswith("/Dockerfile")}
            for keyword, rest in dockerfile_instructions(path):
                if keyword == "COPY" and not rest.startswith("--from"):
                    for src in [w for w in rest.split() if not w.startswith("--")][:-1]:
                        if src != "." and (ROOT / src).is_file():
                            needed.add(src)
            missing = sorted(f for f in needed if (ROOT / f).is_file() and f not in files)
            if missing:
                problems.append(f"{name}: excluded by .dockerignore but needed: {', '.join(missing[:10])}")
            leaked = sorted(f for f in files if re.match(r"(.*/)?(target|\.tools|\.git)/", f))
            if leaked:
                problems.append(f"{name}: in the context but should not be: {', '.join(leaked[:10])}")
            size = sum((ROOT / f).stat().st_size for f in files)
            print(f"          context for {name}: {len(files)} files, {size / 1e6:.1f} MB")
        return problems

    build_context()

    @check("healthchecks everywhere, depends_on waits for service_healthy, stop_grace_period set")
    def health_and_order():
        problems = []
        healthy = set()
        for name, s in services.items():
            hc = s.get("healthcheck") or {}
            if hc.get("disable"):
                continue
            if hc.get("test") or (name in dockerfiles and healthcheck_argv(dockerfiles[name])):
                healthy.add(name)
        for name, s in services.items():
            if name not in healthy:
                problems.append(f"{name}: no healthcheck (compose) or HEALTHCHECK (Dockerfile)")
            for dep, how in (s.get("depends_on") or {}).items():
                if how.get("condition") != "service_healthy":
                    problems.append(f"{name}: depends_on {dep} without condition: service_healthy")
                if dep not in healthy:
                    problems.append(f"{name}: depends on {dep}, which has no healthcheck")
            if not s.get("stop_grace_period"):
                problems.append(f"{name}: no stop_grace_period")
        for name in built:
            deps = set(services[name].get("depends_on") or {})
            referenced = set()
            for value in (services[name].get("environment") or {}).values():
                hp = host_port(value or "")
                if hp and hp[0] in services:
                    referenced.add(hp[0])
            if referenced - deps:
                problems.append(f"{name}: reaches {', '.join(sorted(referenced - deps))} without depends_on")
        return problems

    health_and_order()

    @check("addresses in the services' environment point at compose services and ports they serve")
    def addresses():
        problems = []
        for name, s in built.items():
            for var, value in (s.get("environment") or {}).items():
                hp = host_port(value or "")
                if not hp:
                    continue
                host, port = hp
                if host in ("0.0.0.0", "::"):
                    published = [p["target"] for p in s.get("ports", [])]
                    if port not in published:
                        problems.append(f"{name}: {var} listens on {port}, which is not published ({published})")
                    continue
                if host not in services:
                    problems.append(f"{name}: {var}={value}: {host} is not a compose service")
                    continue
                targets = {p["target"] for p in services[host].get("ports", [])}
                targets |= {int(str(e).split("/")[0]) for e in services[host].get("expose", [])}
                if port not in targets:
                    problems.append(f"{name}: {var}={value}: {host} serves {sorted(targets)}, not {port}")
        return problems

    addresses()

    @check("databases: the DATABASE_URLs name databases the Postgres init SQL creates, with its credentials")
    def databases():
        problems = []
        pg = services.get("postgres")
        if not pg:
            return ["no postgres service"]
        init_dirs = [v["source"] for v in pg.get("volumes", []) if v.get("target") == "/docker-entrypoint-initdb.d"]
        if not init_dirs or not Path(init_dirs[0]).is_dir():
            return ["postgres: no existing folder mounted at /docker-entrypoint-initdb.d"]
        sql = "\n".join(p.read_text() for p in sorted(Path(init_dirs[0]).glob("*.sql")))
        created = set(re.findall(r"(?im)^\s*CREATE DATABASE\s+\"?([A-Za-z0-9_]+)", sql))
        pg_env = pg.get("environment") or {}
        for name, s in built.items():
            url = (s.get("environment") or {}).get("DATABASE_URL")
            if not url:
                problems.append(f"{name}: no DATABASE_URL")
                continue
            parts = urlsplit(url)
            db = parts.path.lstrip("/")
            if parts.hostname != "postgres":
                problems.append(f"{name}: DATABASE_URL host {parts.hostname} is not the postgres service")
            if db not in created:
                problems.append(f"{name}: database {db} is not created by {init_dirs[0]}/*.sql ({sorted(created)})")
            if parts.username != pg_env.get("POSTGRES_USER", "postgres") or parts.password != pg_env.get("POSTGRES_PASSWORD"):
                problems.append(f"{name}: DATABASE_URL credentials differ from POSTGRES_USER/POSTGRES_PASSWORD")
        return problems

    databases()

    @check("queues: the SQS URLs are the ones LocalStack gives the queues its init hook creates")
    def queues():
        problems = []
        ls = services.get("localstack")
        if not ls:
            return ["no localstack service"]
        mounts = [v for v in ls.get("volumes", []) if v.get("target") == "/etc/localstack/init/ready.d"]
        if not mounts:
            return ["localstack: nothing mounted at /etc/localstack/init/ready.d"]
        hook = Path(mounts[0]["source"]) / "create-queues.py"
        if not hook.is_file():
            return [f"localstack: {hook} does not exist"]
        text = hook.read_text()
        names = {}
        for var in ("QUEUE_NAME", "DLQ_NAME"):
            m = re.search(rf'os\.environ\.get\("{var}"\) or "([^"]+)"', text)
            if not m:
                problems.append(f"cannot find the default {var} in {hook.name}; update this check")
            else:
                names[var] = m.group(1)
        ls_env = ls.get("environment") or {}
        if ls_env.get("SERVICES") != "sqs":
            problems.append("localstack: SERVICES is not sqs")
        if ls_env.get("SQS_ENDPOINT_STRATEGY") != "path":
            problems.append("localstack: SQS_ENDPOINT_STRATEGY must be path (queue URLs on the localstack host)")
        ls_host = ls_env.get("LOCALSTACK_HOST", "")
        for name, s in built.items():
            env = s.get("environment") or {}
            region = env.get("AWS_REGION", "us-east-1")
            if env.get("AWS_ENDPOINT_URL") != f"http://{ls_host}":
                problems.append(f"{name}: AWS_ENDPOINT_URL {env.get('AWS_ENDPOINT_URL')} != http://{ls_host} (LOCALSTACK_HOST)")
            for var, key in (("SQS_QUEUE_URL", "QUEUE_NAME"), ("SQS_DLQ_URL", "DLQ_NAME")):
                if var in env and key in names:
                    want = f"http://{ls_host}/queue/{region}/000000000000/{names[key]}"
                    if env[var] != want:
                        problems.append(f"{name}: {var}={env[var]}, but LocalStack names that queue {want}")
        return problems

    queues()

    @check("ports: published on 127.0.0.1 only, and each one is in the README's Docker section")
    def ports():
        problems = []
        section = readme_docker_section()
        if section is None:
            return ["README.md has no '## Docker' section"]
        for name, s in services.items():
            for p in s.get("ports", []):
                if p.get("host_ip") != "127.0.0.1":
                    problems.append(f"{name}: port {p.get('published')} is published on all interfaces")
                if not re.search(rf"\b{p.get('published')}\b", section):
                    problems.append(f"{name}: published port {p.get('published')} is not in README's Docker section")
        return problems

    ports()

    @check("README's Docker section and the Makefile: the commands they name exist")
    def readme_and_make():
        problems = []
        section = readme_docker_section() or ""
        for needle in ("docker compose up --build", "make up", "make down", "/api/v1/messages", "Idempotency-Key"):
            if needle not in section:
                problems.append(f"README's Docker section does not mention {needle}")
        makefile = (ROOT / "Makefile").read_text()
        for target, command in (("up", "docker compose up --build"), ("down", "docker compose down")):
            m = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, re.M)
            if not m or command not in m.group(1):
                problems.append(f"Makefile: target {target} does not run `{command}`")
        if not re.search(r"^test:[^\n#]*\blint-deploy\b", makefile, re.M):
            problems.append("Makefile: test does not depend on lint-deploy")
        return problems

    readme_and_make()


def service_env(compose, service, mappings, database_base=None, database_prefix="", bind=None):
    """The environment a container of SERVICE starts with: its image's ENV (for the
    services built here), then compose's environment, with addresses rewritten."""
    s = compose["services"][service]
    env = {}
    if s.get("build"):
        dockerfile = ROOT / s["build"].get("dockerfile", "Dockerfile")
        for keyword, rest in stages(dockerfile_instructions(dockerfile))[-1][1]:
            if keyword == "ENV":
                env.update(env_assignments(rest))
    env.update({k: v or "" for k, v in (s.get("environment") or {}).items()})
    out = {}
    for k, v in env.items():
        if bind and re.fullmatch(r"(0\.0\.0\.0|\[::\]):\d+", v):
            v = bind
        if k == "DATABASE_URL" and database_base:
            v = f"{database_base.rstrip('/')}/{database_prefix}{urlsplit(v).path.lstrip('/')}"
        for src, dst in mappings:
            v = v.replace(src, dst)
        out[k] = v
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("--compose-json", required=True)
    c.add_argument("--bin-dir", required=True)
    e = sub.add_parser("service-env")
    e.add_argument("--compose-json", required=True)
    e.add_argument("service")
    e.add_argument("--map", action="append", default=[], help="FROM=TO, replaced in every value")
    e.add_argument("--database-base", help="server URL that replaces DATABASE_URL's (keeps the database name)")
    e.add_argument("--database-prefix", default="", help="prefix for the database name")
    e.add_argument("--bind", help="HOST:PORT that replaces every listen-on-all-interfaces address")
    h = sub.add_parser("healthcheck-cmd")
    h.add_argument("dockerfile")
    args = parser.parse_args()

    if args.cmd == "check":
        compose = json.loads(Path(args.compose_json).read_text())
        run_checks(compose, args.bin_dir)
        if failures:
            print(f"{len(failures)} consistency check(s) failed", file=sys.stderr)
            return 1
        return 0
    if args.cmd == "service-env":
        compose = json.loads(Path(args.compose_json).read_text())
        mappings = [tuple(m.split("=", 1)) for m in args.map]
        env = service_env(compose, args.service, mappings, args.database_base, args.database_prefix, args.bind)
        for k, v in env.items():
            sys.stdout.write(f"{k}={v}\0")
        return 0
    if args.cmd == "healthcheck-cmd":
        argv = healthcheck_argv(args.dockerfile)
        if not argv:
            print(f"no HEALTHCHECK CMD in {args.dockerfile}", file=sys.stderr)
            return 1
        sys.stdout.write("\0".join(argv) + "\0")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
