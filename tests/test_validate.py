"""The pieces behind issue 22's one-line messages, each on its own (the table of tests/integration/test_bad_inputs.py
runs them end to end): metric names against declared ones, a plug's accepted keys, the three states of a dataset
folder, errors re-raised from DataLoader workers, and the backends a fastsnn refusal names."""

from __future__ import annotations

from pathlib import Path

import pytest

from brainlab.boundary import report
from brainlab.core.errors import ConfigError, DataError, worker_original
from brainlab.data.base import missing_data
from brainlab.snn import fastsnn
from brainlab.validate import accepted_keys, check_metric_names, is_logged

PHASE = {"_target_": "brainlab.phases.event_snn.EventSNN"}


def torch_reraise(exc: BaseException) -> BaseException:
    """The message torch gives an error it re-raises from a DataLoader worker."""
    from torch._utils import ExceptionWrapper

    try:
        raise exc
    except type(exc):
        wrapper = ExceptionWrapper(where="in DataLoader worker process 3")
    try:
        wrapper.reraise()
    except Exception as reraised:  # noqa: BLE001 - what the main process sees
        return reraised
    raise AssertionError("reraise did not raise")


def test_declared_names_match_patterns_and_lightning_forks() -> None:
    declared = {"train/loss", "val/acc/qa*"}
    assert is_logged("train/loss", declared) and is_logged("train/loss_epoch", declared)
    assert is_logged("val/acc/qa3", declared) and not is_logged("val/acc", declared)


@pytest.mark.parametrize("key", ["monitor", "optimized_metric"])
def test_a_misspelled_metric_names_the_key_the_phase_metrics_and_the_closest(key: str) -> None:
    with pytest.raises(ConfigError) as err:
        check_metric_names({"model": PHASE, key: "val/acc_bset"})
    assert str(err.value).startswith(f"{key}=val/acc_bset is never logged (did you mean val/acc_best?)")
    assert "EventSNN) logs test/acc, test/loss" in str(err.value)


def test_callback_monitors_and_callback_metrics_count() -> None:
    callbacks = {"stop": {"_target_": "pytorch_lightning.callbacks.EarlyStopping", "monitor": "val/lss"},
                 "rates": {"_target_": "brainlab.callbacks.spike_stats.SpikeStats"}}
    with pytest.raises(ConfigError, match=r"callbacks.stop.monitor=val/lss .*did you mean val/loss"):
        check_metric_names({"model": PHASE, "callbacks": callbacks})
    callbacks["stop"]["monitor"] = "val/rate/mean"  # logged by the spike-stats callback
    check_metric_names({"model": PHASE, "callbacks": callbacks, "monitor": "val/acc"})
    check_metric_names({"model": {"_target_": "builtins.dict"}, "monitor": "val/anything"})  # not declared


def test_accepted_keys_follow_kwargs_and_stop_at_object() -> None:
    from brainlab.data.caching import NoCache
    from brainlab.data.multimodal_synthetic import MultimodalSyntheticDataModule
    from brainlab.snn.fused import neuron

    assert accepted_keys(NoCache) == []
    keys = accepted_keys(MultimodalSyntheticDataModule)
    assert {"batch_size", "image_size", "noise"} <= set(keys) and "split" not in keys
    assert accepted_keys(neuron) is None
    assert accepted_keys(neuron, named_only=True) == ["kind", "kernel", "synapse"]


def test_a_dataset_folder_is_not_found_empty_or_incomplete(tmp_path: Path) -> None:
    def line(folder: Path, root: Path | None = None) -> str:
        return str(missing_data("demo", folder, ["a.bin"], "put them there", root=root))

    nowhere = tmp_path / "nowhere"
    assert line(nowhere) == f"demo: {nowhere} not found (expected a.bin there): put them there"
    (tmp_path / "root" / "sub").mkdir(parents=True)
    assert f"demo: {tmp_path / 'root'} is empty (the folder exists but holds no files; expected a.bin)" \
        in line(tmp_path / "root" / "demo", root=tmp_path / "root")
    assert f"{tmp_path / 'root' / 'sub'} is empty" in line(tmp_path / "root" / "sub", root=tmp_path / "root")
    (tmp_path / "root" / "sub" / "b.bin").write_bytes(b"x")
    assert line(tmp_path / "root" / "sub") == \
        f"demo: {tmp_path / 'root' / 'sub'} is incomplete (a.bin not found in it): put them there"
    assert "not found" in line(tmp_path / "root" / "other", root=tmp_path / "root")  # root holds other things


def test_a_brainlab_error_from_a_worker_keeps_its_own_line(capsys: pytest.CaptureFixture,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    reraised = torch_reraise(DataError("demo: a.bin (sample 2): bad: fix it"))
    assert isinstance(reraised, DataError) and str(reraised) == "demo: a.bin (sample 2): bad: fix it"
    assert "Traceback" in reraised.worker_traceback
    assert report(reraised) == 2
    assert capsys.readouterr().err == "error: demo: a.bin (sample 2): bad: fix it\n"


def test_an_unexpected_error_from_a_worker_is_one_line_without_the_traceback(
        capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    reraised = torch_reraise(ValueError("cannot decode\nthe header"))
    assert worker_original(str(reraised)) == ("in DataLoader worker process 3", "cannot decode\nthe header")
    assert report(reraised, tmp_path) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: unexpected ValueError in DataLoader worker process 3: cannot decode; the header ")
    where = Path(err.split("the traceback is in ", 1)[1].split(";", 1)[0])
    assert "Traceback" not in err and "Traceback" in where.read_text()


@pytest.mark.parametrize(("knobs", "named"), [
    ({"reset": "zero"}, "['reset']"),
    ({"recurrent": True, "features": 8}, "['recurrent']"),
    ({"tau_adapt": 100.0}, "['tau_adapt']"),
    ({"kind": "alif"}, "kind=alif"),
])
def test_fastsnn_refusals_name_the_backends_that_can(knobs: dict, named: str) -> None:
    with pytest.raises(ConfigError) as err:
        fastsnn.neuron(**{"kind": "lif", **knobs})
    assert named in str(err.value) and "backend=sinabs" in str(err.value) and "backend=fused" in str(err.value)
    assert "backend=exodus" not in str(err.value)  # exodus: no zero reset, no recurrence, no ALIF


def test_a_fastsnn_typo_names_its_closest_knob() -> None:
    with pytest.raises(ConfigError, match=r"unknown keys \['tau_mme'\] for backend=fastsnn \(did you mean tau_mem"):
        fastsnn.neuron(kind="lif", tau_mme=3.0)
