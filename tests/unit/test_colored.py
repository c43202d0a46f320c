"""mnist_colored: each digit drawn into the channel picked by its integer pixel sum mod 3."""

from __future__ import annotations

import pytest
import torch

from ganmex.data.colored import color_channel, colorize


def test_channel_rule_by_hand_for_uint8_and_float_digits():
    grey = torch.zeros(3, 1, 2, 2, dtype=torch.uint8)
    grey[0, 0, 0, 0] = 3  # sum 3 -> R (0)
    grey[1, 0, 0, 0], grey[1, 0, 1, 1] = 200, 200  # sum 400 = 3 * 133 + 1 -> G (1)
    grey[2, 0, 0, 1] = 255  # sum 255 = 3 * 85 -> R (0)
    assert color_channel(grey).tolist() == [0, 1, 0]
    grey[2, 0, 1, 0] = 2  # sum 257 -> B (2)
    assert color_channel(grey).tolist() == [0, 1, 2]
    # float digits in [0, 1] (load_mnist_test output) follow the same rule on the 0-255 scale
    assert color_channel(grey.float() / 255.0).tolist() == [0, 1, 2]

    coloured = colorize(grey)
    assert coloured.shape == (3, 3, 2, 2) and coloured.dtype == torch.uint8
    for i, channel in enumerate([0, 1, 2]):
        assert torch.equal(coloured[i, channel], grey[i, 0])
        others = [c for c in range(3) if c != channel]
        assert coloured[i, others].sum() == 0
    as_float = colorize(grey.float() / 255.0)
    torch.testing.assert_close(as_float, coloured.float() / 255.0)


def test_colorize_refuses_colour_input():
    with pytest.raises(ValueError, match="grey images N x 1 x H x W"):
        colorize(torch.zeros(2, 3, 4, 4))
