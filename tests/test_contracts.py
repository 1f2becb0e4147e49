"""ame.contracts: every file contract is checked on writing and reading, with the file and key named;
a NaN or infinite number is never a valid result."""

import pytest

from ame import contracts


def _metrics(**changes) -> dict:
    good = {"dataset": "Digits", "task": "base2new", "setting": "16shot", "method": "pkd", "seed": 1,
            "selection": "best", "base": 80.0, "new": 70.0, "hm": 74.67, "accuracy": None,
            "last": {"base": 79.0, "new": 71.0, "hm": 74.79, "accuracy": None, "epoch": 10}, "best_epoch": 7,
            "provenance": {"git_sha": "abc", "config_sha256": "0" * 64, "packages": {"torch": "2.14.1"},
                           "teacher_sha256": None, "device": "cpu", "precision": "fp32"}}
    return {**good, **changes}


def test_a_complete_metrics_file_is_valid():
    assert contracts.validate(_metrics(), contracts.METRICS, "m.json")["hm"] == 74.67


@pytest.mark.parametrize("changes, key", [
    ({"base": float("nan")}, "base"),
    ({"last": {"base": 1.0, "new": float("inf"), "hm": 1.0, "accuracy": None, "epoch": 3}}, "last/new"),
])
def test_nan_or_infinite_scores_are_refused_naming_the_key(changes, key):
    with pytest.raises(ValueError, match=f"m.json: key '{key}': (nan|inf) is not a finite number"):
        contracts.validate(_metrics(**changes), contracts.METRICS, "m.json")


@pytest.mark.parametrize("changes, key", [
    ({"hm": 101.0}, "hm"),                      # a percentage
    ({"task": "b2n"}, "task"),
    ({"setting": "16 shots"}, "setting"),
    ({"base": None}, "base"),                   # base-to-new runs report Base / New / HM
])
def test_out_of_contract_values_are_refused_naming_the_key(changes, key):
    with pytest.raises(ValueError, match=f"m.json: key '{key}'"):
        contracts.validate(_metrics(**changes), contracts.METRICS, "m.json")


def test_a_missing_key_is_named():
    broken = _metrics()
    del broken["provenance"]
    with pytest.raises(ValueError, match="'provenance' is a required property"):
        contracts.validate(broken, contracts.METRICS, "m.json")


def test_cross_dataset_runs_report_one_accuracy():
    xd = _metrics(task="xd", base=None, new=None, hm=None, accuracy=61.5)
    assert contracts.validate(xd, contracts.METRICS, "m.json")["accuracy"] == 61.5
    with pytest.raises(ValueError, match="key 'accuracy'"):
        contracts.validate(_metrics(task="xd", base=None, new=None, hm=None), contracts.METRICS, "m.json")
