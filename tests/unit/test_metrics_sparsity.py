"""Gini index of attributions against its closed forms."""

from __future__ import annotations

import pytest
import torch

from ganmex.metrics import Gini
from ganmex.metrics.sparsity import gini


def test_gini_closed_forms():
    one_hot = torch.zeros(1, 1, 4, 5)
    one_hot[0, 0, 2, 3] = -7.0  # sign is ignored
    assert gini(one_hot, eps=0).item() == pytest.approx(19 / 20)
    assert gini(torch.full((1, 20), 0.3), eps=0).item() == pytest.approx(0.0, abs=1e-7)
    # [1, 2, 3]: sum_k (2k - 4) a_k / (3 * 6) = (-2 + 0 + 6) / 18
    assert gini(torch.tensor([[3.0, 1.0, 2.0]]), eps=0).item() == pytest.approx(4 / 18)
    assert gini(torch.zeros(1, 9)).item() == pytest.approx(0.0, abs=1e-6)


def test_metric_concatenates_batches():
    m = Gini()
    m.update(torch.rand(3, 1, 4, 4))
    m.update(torch.rand(2, 1, 4, 4))
    assert m.compute()["gini"].shape == (5,)
    with pytest.raises(ValueError, match="attributions must be batched"):
        m.update(torch.rand(5))
