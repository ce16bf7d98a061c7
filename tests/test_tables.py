"""The table catalogue is the one place table names live, and the codebook documents it."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

from iceledger import tables

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "iceledger"
CODEBOOK = PACKAGE.parents[1] / "docs" / "codebook.md"


def _docstring_lines(tree: ast.Module) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                lines.update(range(first.lineno, first.end_lineno + 1))
    return lines


def test_code_names_tables_only_through_the_catalogue():
    names = tables.catalogue()
    word = re.compile(r"(?<![\w.{])(" + "|".join(map(re.escape, names)) + r")(?!\w)")
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "tables.py":
            continue
        source = path.read_text("utf-8")
        docstrings = _docstring_lines(ast.parse(source))
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.STRING and token.start[0] not in docstrings:
                found += [f"{path.relative_to(PACKAGE)}:{token.start[0]}: {m}"
                          for m in word.findall(token.string)]
    assert found == []


def test_every_catalogued_table_and_column_is_in_the_codebook():
    text = CODEBOOK.read_text("utf-8")

    def documented(name: str) -> bool:
        # A fiscal-year companion is written beside its table: "`stats_adp`, `_fy`".
        base = name.removesuffix("_fy")
        return bool(re.search(rf"(^|\W){re.escape(name)}(\W|$)", text)) or (
            name != base and f"`{base}`, `_fy`" in text)

    assert [name for name in tables.catalogue() if not documented(name)] == []
    for table in tables.catalogue().values():
        for column in table.columns:
            assert re.search(rf"(^|\W){re.escape(column.name)}(\W|$)", text), (
                f"{table.name}.{column.name} is not in docs/codebook.md")


def test_the_catalogue_reads_every_workbook_table_spec():
    names = tables.catalogue()
    layout = (PACKAGE / "data" / "layouts" / "stats_tables.toml").read_text("utf-8")
    for spec_name in re.findall(r'^name = "(stats_\w+)"', layout, re.M):
        assert names[spec_name].family == "workbooks"
    assert names[tables.STATS_BOOK_INS + "_fy"].family == "workbooks"


def test_each_declared_table_has_ddl_duckdb_accepts(tmp_path):
    import duckdb

    with duckdb.connect(str(tmp_path / "t.duckdb")) as con:
        for table in tables.catalogue().values():
            if table.columns:
                con.execute(table.ddl())
                described = [r[0] for r in con.execute(f'DESCRIBE "{table.name}"').fetchall()]
                assert described == [c.name for c in table.columns]


def test_every_table_constant_names_a_catalogued_table():
    """A constant spelled unlike its stats_tables.toml spec would name a table nothing loads."""
    names = tables.catalogue()
    constants = {k: v for k, v in vars(tables).items()
                 if k.isupper() and isinstance(v, str) and v.startswith(("stats_", "foia_", "ingest_"))}
    assert constants and all(value in names for value in constants.values())


def test_the_pipeline_writes_each_catalogued_column_with_its_declared_type(
        synthetic_warehouse, tmp_path):
    """The catalogue's types are the codebook's: the tables a load writes must have them."""
    import shutil

    import duckdb

    from iceledger.sources.stats.ingest import ingest_stats
    from iceledger.synth.workbooks import write_synthetic_workbooks
    from iceledger.warehouse import Warehouse

    path = tmp_path / "w.duckdb"
    shutil.copy(synthetic_warehouse, path)
    ingest_stats(write_synthetic_workbooks(path, tmp_path / "workbooks"), Warehouse(path))
    with duckdb.connect(str(path), read_only=True) as con:
        written = {}
        for table, column, kind in con.execute(
                "SELECT table_name, column_name, data_type FROM information_schema.columns"
        ).fetchall():
            written.setdefault(table, {})[column] = kind
    checked = [table for table in tables.catalogue().values() if table.name in written]
    assert {tables.FOIA_RELEASES, tables.STATS_CHECKS, tables.STATS_RELEASE_CHECKS} <= {
        t.name for t in checked}
    wrong = [f"{t.name}.{c.name}: declared {c.kind}, written {written[t.name].get(c.name)}"
             for t in checked for c in t.columns
             if written[t.name].get(c.name, "").upper() != c.kind.split()[0].upper()]
    assert wrong == []


def _codebook_entries(text: str) -> dict[str, str]:
    """Each table's own text in the codebook: the section its heading names it in, else the
    bullet or table row that begins with its name (the derived tables, the workbook tables)."""
    entries: dict[str, str] = {}
    for section in re.split(r"^(?=#{2,3} )", text, flags=re.M):
        heading, _, body = section.partition("\n")
        for name in re.findall(r"\b(?:stats|foia|ingest)_\w+", heading):
            entries.setdefault(name, section)
        for item in re.split(r"^(?=- `|\| `)", body, flags=re.M):
            first = re.match(r"[-|] `(\w+)`", item)
            if first:
                entries.setdefault(first.group(1), item)
    return entries


def test_each_catalogued_column_is_documented_under_its_own_table():
    """Stronger than the whole-codebook check: `status` named under stats_checks does not
    document a column of stats_release_checks unless that table's entry says so."""
    text = CODEBOOK.read_text("utf-8")
    entries = _codebook_entries(text)
    # Columns every table of a family has are stated once, in the family's section.
    shared = {"foia": text.partition("## FOIA records")[2].partition("\n### ")[0]}
    missing = []
    for table in tables.catalogue().values():
        if not table.columns:
            continue
        entry = entries.get(table.name, "") + shared.get(table.family, "")
        missing += [f"{table.name}.{column.name}" for column in table.columns
                    if not re.search(rf"(^|\W){re.escape(column.name)}(\W|$)", entry)]
    assert missing == []
