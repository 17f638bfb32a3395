"""One name per quantity from the per-request records to the report: the latency decomposition's
names are record columns, Summary fields, sweep rows' columns and the report's components."""

from __future__ import annotations

import dataclasses

from simlat.engine.records import Records
from simlat.metrics import DECOMPOSITION, Summary
from simlat.report.frames import COMPONENTS
from simlat.sweep.evaluate import SUMMARY_COLUMNS, Evaluation
from simlat.sweep.runner import TARGET_COLUMNS


def test_decomposition_names_are_record_columns_summary_fields_and_row_columns():
    records = {f.name for f in dataclasses.fields(Records)}
    rows = {f.name for f in dataclasses.fields(Evaluation)}
    assert set(DECOMPOSITION) <= records
    assert set(DECOMPOSITION) <= set(Summary.model_fields)
    assert set(DECOMPOSITION) <= rows
    assert {col for col, _ in COMPONENTS} == set(DECOMPOSITION)


def test_rows_copy_summary_fields_by_name():
    rows = {f.name for f in dataclasses.fields(Evaluation)}
    assert set(SUMMARY_COLUMNS) <= set(Summary.model_fields) & rows


def test_points_copy_evaluation_fields_by_name():
    rows = {f.name for f in dataclasses.fields(Evaluation)}
    assert set(TARGET_COLUMNS) <= rows
