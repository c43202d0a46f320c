"""The report input format: validation with clear errors, and a lossless save/load round trip."""

from __future__ import annotations

import math

import pytest
import torch

from ganmex.report.records import EvalResults, Record, read_records_jsonl


def test_add_accepts_tensors_and_numbers_one_record_per_example():
    results = EvalResults()
    results.add("ig", "zero", "gini", torch.tensor([0.25, 0.5]), first_example=10)
    results.add("ig", "zero", "fid", 3.0)
    assert [(r.value, r.example) for r in results.records] == [(0.25, 10), (0.5, 11), (3.0, 0)]


def test_save_and_load_round_trip(tmp_path):
    results = EvalResults()
    results.add("ig", "ganmex", "deletion_auc", [0.1, float("nan"), 0.3])
    results.add_curve("deletion", "ig", "ganmex", torch.linspace(0, 1, 3), [1.0, 0.5, 0.0], n=3)
    results.add_curve("insertion", "ig", "ganmex", [0.0, 1.0], [0.0, 1.0], reference="blur")
    results.add_sanity("ig", "ganmex", ["fc2", "conv1"], torch.tensor([0.4, -0.1]), n=3)
    paths = results.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.json", "records.jsonl"]
    assert '"value": null' in paths["records"].read_text()  # NaN written as JSON null
    back = EvalResults.load(tmp_path)
    assert back.records[0] == results.records[0] and math.isnan(back.records[1].value)
    assert back.curves == results.curves and back.sanity == results.sanity
    assert back.curves[1].reference == "blur" and back.sanity[0].spearman == pytest.approx((0.4, -0.1))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "ig/x"}, "method='ig/x' contains '/'"),
        ({"baseline": ""}, "baseline must be a non-empty"),
        ({"metric": None}, "metric must be a non-empty"),
    ],
)
def test_bad_record_names_are_rejected(kwargs, match):
    fields = {"method": "ig", "baseline": "zero", "metric": "gini", "value": 1.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        Record(**fields)


def test_bad_curves_are_rejected():
    results = EvalResults()
    with pytest.raises(ValueError, match="kind='morf' is not one of"):
        results.add_curve("morf", "ig", "zero", [0, 1], [1, 0])
    with pytest.raises(ValueError, match="3 fractions but 2 scores"):
        results.add_curve("deletion", "ig", "zero", [0, 0.5, 1], [1, 0])
    with pytest.raises(ValueError, match="2 layers but 1 correlations"):
        results.add_sanity("ig", "zero", ["a", "b"], [0.3])


def test_missing_records_file_and_corrupt_line_say_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="no records.jsonl in"):
        EvalResults.load(tmp_path)
    (tmp_path / "records.jsonl").write_text('{"method": "ig", "baseline": "zero"}\n')
    with pytest.raises(ValueError, match=r"records.jsonl:1: not a record"):
        read_records_jsonl(tmp_path / "records.jsonl")
