"""The one SparkSession the Spark tests share (starting one takes ~20 s).

Import the fixture into a Spark test module (`from conftest_spark import spark_session`) and
mark the tests `@pytest.mark.spark`. It skips, with the reason, where PySpark or Java is missing.
"""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def spark_session():
    pytest.importorskip("pyspark", reason="PySpark is not installed (pip install '.[spark]')")
    if shutil.which("java") is None:
        pytest.skip("no Java runtime on PATH: PySpark needs one (Debian: openjdk-17-jre-headless)")
    from iceledger.metrics.backends import local_spark_session

    session = local_spark_session()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
