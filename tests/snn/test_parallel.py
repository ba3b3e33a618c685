"""The CPU kernels' batch split over threads (`snn.parallel.rows_in_parallel`): the same numbers on any thread count.

Under pytest-xdist each worker runs torch on its share of the cores (often one thread), so these tests set the
thread count themselves.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from brainlab.snn import parallel
from brainlab.snn.parallel import rows_in_parallel
from brainlab.snn.plug import factory


@pytest.fixture
def threads() -> Iterator[None]:
    saved = torch.get_num_threads()
    yield
    torch.set_num_threads(saved)


def test_rows_are_split_into_contiguous_slices_covering_the_batch(threads: None, split: str) -> None:
    torch.set_num_threads(3)
    seen: list[tuple[int, int]] = []
    rows_in_parallel(10, lambda lo, hi: seen.append((lo, hi)))
    assert sorted(seen) == [(0, 3), (3, 6), (6, 10)]
    seen.clear()
    rows_in_parallel(2, lambda lo, hi: seen.append((lo, hi)))  # small batches run in the caller's thread
    assert seen == [(0, 2)]


@pytest.fixture(params=["openmp", "pool"])
def split(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of running the slices: on torch's OpenMP team (where found) and on a pool of our own."""
    if request.param == "pool":
        monkeypatch.setattr(parallel, "_TEAM", None)
    return request.param


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the OpenMP runtime is found through /proc")
def test_slices_run_on_torchs_openmp_team_with_the_caller_as_one_of_its_threads(threads: None) -> None:
    runtime = parallel.loaded_openmp()
    assert runtime is not None and parallel.openmp_team() is not None
    home = Path(torch.__file__).resolve().parent
    assert runtime.resolve().is_relative_to(home) or runtime.parent.name == "torch.libs", runtime  # torch's own
    torch.set_num_threads(2)
    seen: dict[tuple[int, int], int] = {}
    rows_in_parallel(8, lambda lo, hi: seen.__setitem__((lo, hi), threading.get_ident()))
    assert sorted(seen) == [(0, 4), (4, 8)]
    assert threading.get_ident() in seen.values() and len(set(seen.values())) == 2


def test_the_environment_can_ask_for_our_own_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRAINLAB_KERNEL_THREADS", "pool")
    monkeypatch.setattr(parallel, "_TEAM", False)  # not looked up yet
    assert parallel.openmp_team() is None
    monkeypatch.delenv("BRAINLAB_KERNEL_THREADS")
    monkeypatch.setattr(parallel, "_TEAM", False)
    assert (parallel.openmp_team() is not None) == (parallel.loaded_openmp() is not None)


def test_an_error_in_a_slice_is_raised_in_the_callers_thread(threads: None, split: str) -> None:
    torch.set_num_threads(2)
    done: list[int] = []

    def fail_second(lo: int, hi: int) -> None:
        if lo:
            raise ValueError(f"rows {lo}:{hi}")
        done.append(lo)

    with pytest.raises(ValueError, match="rows 4:8"):
        rows_in_parallel(8, fail_second)
    assert done == [0]
    rows_in_parallel(8, lambda lo, hi: done.append(hi))  # the team is usable after the error
    assert sorted(done) == [0, 4, 8]


@pytest.mark.parametrize("neuron", [{"kind": "iaf"}, {"kind": "lif", "tau_mem": 8.0, "tau_syn": 4.0},
                                    {"kind": "alif", "tau_mem": 8.0, "tau_adapt": 20.0, "recurrent": True,
                                     "features": 6}])
def test_fused_layer_gives_the_same_spikes_and_gradients_on_one_and_on_several_threads(
    threads: None, split: str, neuron: dict
) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(9, 20, 6, generator=gen) * 3 + 0.5
    results = []
    for n in (1, 3):
        torch.set_num_threads(n)
        torch.manual_seed(0)
        layer = factory("fused")(spike_threshold=1.0, train_tau=True, **neuron)
        inp = x.clone().requires_grad_()
        out = layer(inp)
        (out * torch.linspace(-1, 1, 6)).sum().backward()
        grads = [inp.grad, *(p.grad for p in layer.parameters() if p.requires_grad)]
        results.append((out.detach(), layer.v_mem.detach(), grads))
    (out1, v1, g1), (out3, v3, g3) = results
    assert out1.sum() > 0 and torch.equal(out1, out3) and torch.equal(v1, v3)
    for a, b in zip(g1, g3, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)  # per-row gradients are equal; summed over rows
