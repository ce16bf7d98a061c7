"""The Parquet lake: every table, partitioned, with a manifest; incremental; and metrics on a
real standalone Spark cluster (master and worker started on loopback) reading it.

The cluster test's data are the SYNTHETIC parity warehouse of test_metrics_spark_parity.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import HANG_GUARD_SECONDS
from test_metrics_spark_parity import RELEASES, parity_warehouse, same, variants
from typer.testing import CliRunner

from iceledger.cli import app
from iceledger.errors import IceledgerError
from iceledger.lake import MANIFEST, export_lake, read_manifest
from iceledger.metrics import REGISTRY, compute
from iceledger.metrics.backends import duckdb_backend, spark_session
from iceledger.tables import FOIA_ARRESTS, FOIA_STAYS, STATS_ADP
from iceledger.warehouse import Warehouse


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Warehouse:
    return parity_warehouse(tmp_path_factory.mktemp("lake") / "w.duckdb")


def read_back(lake: Path, name: str) -> pa.Table:
    """A lake table as any engine sees it: DuckDB over the Hive folders, partition values typed
    by the manifest's schema, columns in the warehouse's order."""
    schema = read_manifest(lake)["tables"][name]["schema"]
    columns = ", ".join(f'CAST("{c["name"]}" AS {c["type"]}) AS "{c["name"]}"' for c in schema)
    with duckdb.connect() as con:
        return con.sql(
            f"SELECT {columns} FROM read_parquet('{lake / name}/**/*.parquet', "
            "hive_partitioning = true, hive_types_autocast = false)").to_arrow_table()


def test_every_table_is_exported_with_its_rows_schema_and_sources(warehouse, tmp_path):
    lake = tmp_path / "lake"
    result = export_lake(warehouse, lake)
    manifest = json.loads((lake / MANIFEST).read_text())
    names = warehouse.table_names()
    assert sorted(manifest["tables"]) == names and result.partitions_written > 0
    for name in names:
        table = warehouse.read_table(name)
        entry = manifest["tables"][name]
        assert entry["rows"] == table.num_rows, name
        assert [c["name"] for c in entry["schema"]] == table.column_names
        ordered = ", ".join(f'"{c}"' for c in table.column_names)
        with duckdb.connect() as con:
            con.register("want", table)
            con.register("got", read_back(lake, name))
            # Every row comes back exactly once (a multiset comparison: EXCEPT ALL both ways).
            for a, b in (("want", "got"), ("got", "want")):
                assert con.execute(f"SELECT count(*) FROM (SELECT {ordered} FROM {a} EXCEPT ALL "
                                   f"SELECT {ordered} FROM {b})").fetchone()[0] == 0, name
    assert manifest["tables"][FOIA_ARRESTS]["partition_by"] == ["release", "fiscal_year"]
    assert manifest["tables"][STATS_ADP]["partition_by"] == ["fiscal_year"]
    assert {p.split("/")[1] for p in manifest["tables"][FOIA_STAYS]["partitions"]} == {
        f"release={r.isoformat()}" for r in RELEASES}


def test_a_new_release_adds_partitions_and_leaves_the_others_alone(tmp_path):
    first = parity_warehouse(tmp_path / "w.duckdb", releases=RELEASES[:1])
    lake = tmp_path / "lake"
    export_lake(first, lake)
    before = {p: p.stat().st_mtime_ns for p in lake.rglob("*.parquet")}
    again = export_lake(first, lake)
    assert again.partitions_written == 0 and again.partitions_kept == len(before)

    second = parity_warehouse(tmp_path / "w2.duckdb")
    shutil.copy(second.path, first.path)
    result = export_lake(first, lake)
    after = {p: p.stat().st_mtime_ns for p in lake.rglob("*.parquet")}
    new_release = f"release={RELEASES[1].isoformat()}"
    arrests_before = [p for p in before if p.parts[-4] == FOIA_ARRESTS]
    assert arrests_before and all(after[p] == before[p] for p in arrests_before)
    assert any(new_release in str(p) for p in after if p not in before)
    assert result.partitions_written < len(after)
    assert read_manifest(lake)["tables"][FOIA_ARRESTS]["rows"] == (
        second.read_table(FOIA_ARRESTS).num_rows)


def test_lake_export_command_and_its_errors(warehouse, tmp_path):
    runner = CliRunner()
    done = runner.invoke(app, ["lake", "export", str(tmp_path / "lake"),
                               "--warehouse", str(warehouse.path)])
    assert done.exit_code == 0, done.output
    assert "tables" in done.output and "written" in done.output
    missing = runner.invoke(app, ["lake", "export", str(tmp_path / "l2"),
                                  "--warehouse", str(tmp_path / "none.duckdb")])
    assert missing.exit_code == 1 and "no warehouse here" in missing.output
    assert "Traceback" not in missing.output
    with pytest.raises(IceledgerError, match="no lake here"):
        read_manifest(tmp_path / "nowhere")


def test_a_master_that_does_not_answer_is_one_line(tmp_path):
    pytest.importorskip("pyspark")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: refused at once
        with pytest.raises(IceledgerError, match=rf"spark://127.0.0.1:{port} does not answer"):
            spark_session(f"spark://127.0.0.1:{port}")


# --- a real standalone cluster on loopback -------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(args: list[str], log: Path, ready: str, env: dict) -> subprocess.Popen:
    """Start one Spark daemon and wait for its log to say `ready` (a hang guard only)."""
    spark_class = Path(env["SPARK_HOME"]) / "bin" / "spark-class"
    with open(log, "wb") as handle:
        process = subprocess.Popen([str(spark_class), *args], stdout=handle,
                                   stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while ready not in log.read_text(errors="replace"):
        assert process.poll() is None, f"{args[0]} ended: {log.read_text(errors='replace')}"
        assert time.monotonic() < deadline, f"{args[0]} never said {ready!r}"
        time.sleep(0.2)
    return process


@pytest.fixture(scope="module")
def spark_cluster(tmp_path_factory):
    pyspark = pytest.importorskip("pyspark", reason="PySpark is not installed ('.[spark]')")
    if shutil.which("java") is None:
        pytest.skip("no Java runtime on PATH: a Spark cluster needs one")
    logs = tmp_path_factory.mktemp("spark-cluster")
    env = {**os.environ, "SPARK_HOME": str(Path(pyspark.__file__).parent),
           "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_LOG_DIR": str(logs)}
    port = _free_port()
    master_url = f"spark://127.0.0.1:{port}"
    daemons = []
    try:
        daemons.append(_start(
            ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
             "--webui-port", str(_free_port())], logs / "master.log", "ALIVE", env))
        daemons.append(_start(
            ["org.apache.spark.deploy.worker.Worker", master_url, "--host", "127.0.0.1",
             "--cores", "2", "--memory", "2g", "--webui-port", str(_free_port()),
             "--work-dir", str(logs / "work")],
            logs / "worker.log", "Successfully registered with master", env))
        yield master_url
    finally:
        for daemon in reversed(daemons):
            os.killpg(daemon.pid, 15)
            daemon.wait(timeout=HANG_GUARD_SECONDS)


@pytest.mark.spark
def test_every_metric_on_a_standalone_cluster_matches_duckdb(warehouse, spark_cluster, tmp_path):
    """The lake is exported, then a separate driver (its own process, as a user's would be)
    runs every metric on the cluster, with the parity test's parameters; each result equals
    DuckDB's on the warehouse."""
    lake, out = tmp_path / "lake", tmp_path / "results"
    assert CliRunner().invoke(app, ["lake", "export", str(lake), "--warehouse",
                                    str(warehouse.path)]).exit_code == 0
    asked = {name: variants(name)[0] for name in sorted(REGISTRY)}
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({name: {"by": list(p.by), "filters": {k: list(v) for k, v in
                                                                     p.filters.items()}}
                                for name, p in asked.items()}))
    driver = textwrap.dedent(f"""
        import json
        import pyarrow.parquet as pq
        from pathlib import Path
        from iceledger.metrics import MetricParams, compute
        from iceledger.metrics.backends import connect
        backend = connect(None, "spark", lake={str(lake)!r}, spark_master={spark_cluster!r})
        print("app", backend._session.sparkContext.master, flush=True)
        out = Path({str(out)!r}); out.mkdir()
        for name, p in json.loads(Path({str(plan)!r}).read_text()).items():
            params = MetricParams(by=tuple(p["by"]),
                                  filters={{k: tuple(v) for k, v in p["filters"].items()}})
            pq.write_table(compute(name, backend, params), out / (name + ".parquet"))
    """)
    # Every metric is a Spark job or several: on a loaded 2-core machine this takes many
    # minutes, so the hang guard here is several of the usual.
    run = subprocess.run([sys.executable, "-c", driver], capture_output=True, text=True,
                         timeout=4 * HANG_GUARD_SECONDS)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"app {spark_cluster}" in run.stdout
    duck = duckdb_backend(warehouse.path)
    for name, params in asked.items():
        on_duckdb = compute(name, duck, params)
        assert on_duckdb.num_rows > 0, name
        same(on_duckdb, pq.read_table(out / f"{name}.parquet"))
