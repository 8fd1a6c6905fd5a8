"""Value and gradient parity of the core losses with lightly 1.6 on fixed inputs (the benchmark's parity part).

lightly is a development dependency only; without it these tests skip. Timing lives in
``benchmarks/objectives_vs_lightly.py``, never here.
"""

import pytest
import torch

pytest.importorskip("lightly")

from benchmarks.objectives_vs_lightly import CASES, check_parity  # noqa: E402


@pytest.mark.parametrize("name", sorted(CASES))
def test_values_and_gradients_equal_lightlys(name):
    result = check_parity(name, batch=24, seed=1)
    # check_parity raises on a mismatch; the numbers it returns must also be real losses, not zeros
    assert result["value"] != 0 and torch.isfinite(torch.tensor(result["value"]))
    assert result["grad_rel_err"] < 1e-4


def test_parity_check_catches_a_wrong_loss():
    """The check is not vacuous: a loss off by a small factor fails it."""
    import benchmarks.objectives_vs_lightly as bench

    original = bench.CASES["ntxent"]

    def scaled(batch, g):
        pair = original(batch, g)
        ours = pair.ours
        pair.ours = lambda a, b: 1.001 * ours(a, b)
        return pair

    bench.CASES["ntxent"] = scaled
    try:
        with pytest.raises(AssertionError, match="ntxent"):
            check_parity("ntxent", batch=16)
    finally:
        bench.CASES["ntxent"] = original
