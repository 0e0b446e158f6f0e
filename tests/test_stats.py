"""tool_n1.stats: Wilson intervals and the exact McNemar test against values worked out by hand."""

import pytest

from tool_n1.stats import binomial_two_sided_p, mcnemar_exact, wilson_interval


def test_wilson_interval_known_values():
    # p = 0.21, z^2/n = 0.019207: centre (0.21 + 0.009604) / 1.019207 = 0.21546, half-width 0.05618
    low, high = wilson_interval(42, 200)
    assert low == pytest.approx(0.15928, abs=1e-4) and high == pytest.approx(0.27165, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(0, 10)[1] == pytest.approx(0.2775, abs=1e-4)
    assert wilson_interval(10, 10)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_binomial_p_values():
    assert binomial_two_sided_p(0, 0) == 1.0
    assert binomial_two_sided_p(0, 5) == pytest.approx(2 / 32)  # 2 * (1/2)^5
    assert binomial_two_sided_p(2, 12) == pytest.approx(2 * 79 / 4096)  # 2 * (1 + 12 + 66) / 2^12
    assert binomial_two_sided_p(6, 12) == 1.0


def test_mcnemar_counts_discordant_pairs_only():
    before = [1, 1, 0, 0, 1, 0, 0, 0, 0, 0]
    after = [1, 0, 1, 1, 1, 1, 1, 1, 1, 0]
    result = mcnemar_exact(before, after)
    assert (result["n"], result["b"], result["c"]) == (10, 1, 6)
    assert result["rate_before"] == 0.3 and result["rate_after"] == 0.8
    assert result["difference"] == pytest.approx(0.5)
    assert result["p_value"] == pytest.approx(binomial_two_sided_p(1, 7)) == pytest.approx(0.125)
    assert mcnemar_exact([1, 0], [1, 0])["p_value"] == 1.0
    with pytest.raises(ValueError):
        mcnemar_exact([1], [1, 0])
