"""The read-only DuckDB backend keeps small results of equal expressions, and only small ones."""

from __future__ import annotations

import duckdb
from ibis.backends.duckdb import Backend as IbisDuckDBBackend

from iceledger.metrics import backends
from iceledger.metrics.backends import duckdb_backend


def test_an_equal_small_query_runs_once_and_a_large_one_every_time(tmp_path, monkeypatch):
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE numbers AS SELECT range AS n FROM range(100000)")
    ran = []
    run = IbisDuckDBBackend.to_pyarrow

    def counted(self, expr, /, **kwargs):
        ran.append(expr)
        return run(self, expr, **kwargs)

    monkeypatch.setattr(IbisDuckDBBackend, "to_pyarrow", counted)
    backend = duckdb_backend(path)
    try:
        def small():
            # Built afresh each time: an equal expression, not the same object.
            numbers = backend.table("numbers")
            return numbers.filter(numbers.n < 3).aggregate(total=numbers.n.sum())

        first, again = small().to_pyarrow(), small().to_pyarrow()
        assert first.to_pylist() == again.to_pylist() == [{"total": 3}]
        assert len(ran) == 1
        backend.forget_results()
        assert small().to_pyarrow().to_pylist() == [{"total": 3}]
        assert len(ran) == 2

        # 100,000 int64 values are 800,000 bytes, over the size a result may be kept at.
        monkeypatch.setattr(backends, "RESULT_BYTES_KEPT", 100_000)
        whole = backend.table("numbers").select("n")
        assert whole.to_pyarrow().num_rows == whole.to_pyarrow().num_rows == 100_000
        assert len(ran) == 4

        # A different expression is another query.
        numbers = backend.table("numbers")
        assert numbers.filter(numbers.n < 4).aggregate(total=numbers.n.sum()).to_pyarrow(
        ).to_pylist() == [{"total": 6}]
        assert len(ran) == 5

        # A scalar (a count a capability check asks for) is kept too, though it has no buffers.
        for _ in range(2):
            assert backend.table("numbers").n.max().to_pyarrow().as_py() == 99_999
        assert len(ran) == 6
    finally:
        backend.disconnect()


def test_kept_results_stay_within_their_byte_budget(tmp_path, monkeypatch):
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE numbers AS SELECT range AS n FROM range(1000)")
    monkeypatch.setattr(backends, "RESULTS_BYTES_KEPT", 3_000)
    backend = duckdb_backend(path)
    try:
        numbers = backend.table("numbers")
        # Each result is 100 int64 values, a little over 800 bytes: the budget holds three.
        hundreds = [numbers.filter(numbers.n.between(start, start + 99))
                    for start in range(0, 1000, 100)]
        for hundred in hundreds:
            hundred.to_pyarrow()
            assert backend._results.bytes <= 3_000
        kept = [(h.op(), None) in backend._results for h in hundreds]
        assert kept == [False] * 7 + [True] * 3
    finally:
        backend.disconnect()
