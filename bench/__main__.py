"""`python -m bench [NAME ...] [--entries N]`: run the benchmarks on PostgreSQL and print the table.

Each benchmark gets a database of its own on the local server, copied from a template database
(`billable_bench`) that holds the migrated schema and the generated firm; the template is rebuilt only
when the firm's size, the generator or the migrations change. Each benchmark runs in its own process,
so one cannot warm, fill or bloat another. The figures are printed as a table and written as JSON to
bench/results/<timestamp>.json and bench/results/latest.json.
"""

import argparse
import datetime as dt
import hashlib
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
TEMPLATE = "billable_bench"
BENCHMARKS = ["ingest", "billing", "reports", "pdf", "web", "csv"]
MODULES = {"ingest": "bench.ingest", "billing": "bench.billing_run", "reports": "bench.reports",
           "pdf": "bench.pdf", "web": "bench.web", "csv": "bench.csv_export"}
DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432"
GENERATOR_VERSION = 1


def _arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}")
    parser.add_argument("--entries", type=int, default=None,
                        help="scale every benchmark's entry count to N (default: the issue's sizes)")
    parser.add_argument("--server", default=os.environ.get("BENCH_DATABASE_SERVER", DEFAULT_SERVER),
                        help="PostgreSQL server URL without a database name (default: %(default)s)")
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--projects", type=int, default=400)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--keep", action="store_true", help="keep each benchmark's database afterwards")
    parser.add_argument("--no-save", action="store_true", help="print the table only, write no JSON")
    parser.add_argument("--markdown", action="store_true",
                        help="print bench/results/latest.json as Markdown tables (for the README) and stop")
    # Internal: one benchmark (or the template set-up) in this process.
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    if args.entries is not None and args.entries < 100:
        parser.error("--entries must be at least 100")
    return args


def _log(message: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


# --- the worker: one benchmark in this process -------------------------------------------------------------

def _worker(args: argparse.Namespace) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import django

    django.setup()
    from bench.context import Context
    from bench.generator import FirmSize
    from bench.harness import write_json

    size = FirmSize(members=args.members, clients=args.clients, projects=args.projects, seed=args.seed)
    context = Context(server=args.server, database=args.database, template=TEMPLATE, entries=args.entries,
                      size=size, log=_log)
    if args.worker == "setup":
        from django.core.management import call_command

        from bench.generator import build_firm

        call_command("migrate", verbosity=0, interactive=False)
        build_firm(size)
        # Planner statistics for the firm's tables, as autovacuum would gather them; databases copied from
        # the template inherit them.
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        return
    module = importlib.import_module(MODULES[args.worker])
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    result = module.run(context)
    result.seconds = time.perf_counter() - started
    # Other work on the machine inflates absolute times; the ratios to baselines measured alongside hold.
    result.notes.append(f"load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end "
                        f"({os.cpu_count()} cores)")
    write_json(args.out, result.as_dict())


def _worker_command(args: argparse.Namespace, name: str, database: str, out: str | None = None) -> list[str]:
    command = [sys.executable, "-m", "bench", "--worker", name, "--database", database, "--server", args.server,
               "--members", str(args.members), "--clients", str(args.clients), "--projects", str(args.projects),
               "--seed", str(args.seed)]
    if args.entries:
        command += ["--entries", str(args.entries)]
    if out:
        command += ["--out", out]
    return command


def _run_worker(args: argparse.Namespace, name: str, database: str, out: str | None = None) -> None:
    from bench.harness import database_url

    env = {**os.environ, "DATABASE_URL": database_url(args.server, database),
           "DJANGO_SETTINGS_MODULE": "bench.settings", "PYTHONUNBUFFERED": "1"}
    subprocess.run(_worker_command(args, name, database, out), cwd=ROOT, env=env, check=True)


# --- the orchestrator ---------------------------------------------------------------------------------------

def _template_stamp(args: argparse.Namespace) -> str:
    digest = hashlib.sha1()
    for path in sorted([*ROOT.glob("*/migrations/*.py"), BENCH_DIR / "generator.py"]):
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return (f"billable bench template v{GENERATOR_VERSION} members={args.members} clients={args.clients} "
            f"projects={args.projects} seed={args.seed} source={digest.hexdigest()[:12]}")


def _ensure_template(args: argparse.Namespace) -> None:
    from bench.harness import create_database, database_comment, set_database_comment

    stamp = _template_stamp(args)
    if database_comment(args.server, TEMPLATE) == stamp:
        _log(f"template database {TEMPLATE} is up to date")
        return
    _log(f"building template database {TEMPLATE}: migrate, then the firm ({stamp})")
    started = time.perf_counter()
    create_database(args.server, TEMPLATE)
    _run_worker(args, "setup", TEMPLATE)
    set_database_comment(args.server, TEMPLATE, stamp)
    _log(f"template ready in {time.perf_counter() - started:.1f}s")


def _machine(server: str) -> dict:
    from bench.harness import admin_connection

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory_kib = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                              if line.startswith("MemTotal")))
    except (OSError, StopIteration, ValueError):
        memory_kib = 0
    with admin_connection(server) as admin:
        postgres = admin.execute("SHOW server_version").fetchone()[0]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(memory_kib / 1024 / 1024, 1),
            "os": platform.platform(), "python": platform.python_version(), "postgresql": postgres,
            "commit": commit}


def _orchestrate(args: argparse.Namespace) -> int:
    from bench.harness import create_database, drop_database, template_lock, write_json
    from bench.table import render

    names = args.names or BENCHMARKS
    started = time.perf_counter()
    results, failed = [], []
    for name in names:
        database = f"{TEMPLATE}_{name}"
        with template_lock(args.server):
            _ensure_template(args)
            _log(f"{name}: database {database}")
            create_database(args.server, database, template=TEMPLATE)
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
            out_path = out.name
        try:
            _run_worker(args, name, database, out_path)
            results.append(json.loads(Path(out_path).read_text()))
        except subprocess.CalledProcessError as error:
            _log(f"{name} failed (exit {error.returncode})")
            failed.append(name)
            results.append({"name": name, "skipped": f"failed (exit {error.returncode})", "measurements": [],
                            "checks": [], "notes": []})
        finally:
            os.unlink(out_path)
            if not args.keep:
                drop_database(args.server, database)
    report = {
        "run_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1),
        "entries_override": args.entries,
        "firm": {"members": args.members, "clients": args.clients, "projects": args.projects, "seed": args.seed},
        "machine": _machine(args.server),
        "benchmarks": results,
    }
    sys.stdout.write(render(report) + "\n")
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        write_json(RESULTS / f"{stamp}.json", report)
        write_json(RESULTS / "latest.json", report)
        _log(f"results written to bench/results/{stamp}.json and bench/results/latest.json")
    return 1 if failed else 0


def main(argv=None) -> int:
    args = _arguments(argv)
    if args.markdown:
        from bench.table import machine_line, markdown

        report = json.loads((RESULTS / "latest.json").read_text())
        sys.stdout.write(f"{report['run_at']}: {machine_line(report)}\n\n{markdown(report)}\n")
        return 0
    if args.worker:
        _worker(args)
        return 0
    return _orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
