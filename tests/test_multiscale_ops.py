"""MViT's pooling-attention ops, figures worked out by hand (the executor's naive references and
torch check their values in tests/test_executor_ops.py, their saved bytes tests/test_saved_for_backward.py)."""

from __future__ import annotations

import numpy as np

from archcalc.ops.base import Saved
from archcalc.ops.multiscale import HeadConv3d, RelativeDistance


def test_head_conv3d_is_one_head_s_convolution_times_the_heads() -> None:
    # MViTv2-S block 0's pool_k: 1 head of 96 channels on 8x56x56, kernel 3, stride 1x8x8, padding 1
    op = HeadConv3d(out=96, kernel=3, stride=[1, 8, 8], padding=1, groups=96, bias=False)
    inputs = [(1, 96, 8, 56, 56)]
    # (56 + 2 - 3) // 8 + 1 = 7 and (8 + 2 - 3) // 1 + 1 = 8
    assert op.output_shape(inputs) == (1, 96, 8, 7, 7)
    assert op.parameters(inputs) == {"weight": (96, 1, 3, 3, 3)}  # depthwise: one 3x3x3 filter per channel
    # two heads (block 1's): each output element 1 channel x 27 taps
    two = [(2, 96, 8, 56, 56)]
    assert op.macs(two, op.output_shape(two)) == 2 * 96 * 8 * 7 * 7 * 27
    assert op.saved_for_backward(two, op.output_shape(two)) == Saved(inputs=(0,))


def test_relative_distances_by_hand() -> None:
    # 8 queries, 2 keys pooled 4x: a key step of max(8/2, 1) = 4, the query step 1;
    # dist[i][j] = i - (j + 1 - 2) * 4
    ids = RelativeDistance(q=8, k=2).forward([], {})[0]
    assert ids.dtype == np.int64
    assert ids.tolist() == [[i + 4, i] for i in range(8)]
    # equal grids: i - j + (k - 1), from 0 (first query, last key) to 2k - 2 (a table of 2k - 1 rows)
    assert RelativeDistance(q=3, k=3).forward([], {})[0].tolist() == [[2, 1, 0], [3, 2, 1], [4, 3, 2]]
    assert RelativeDistance(q=3, k=3).output_shape([]) == (3, 3)
