"""The host-ahead sleep's clock calibration cannot be pushed outside what a GPU's clock can be."""

from kernelarena.bench.timing import GPU_CLOCK_MHZ, plausible_cycles_per_us


def test_a_patched_event_timer_cannot_make_the_sleep_huge_or_vanish():
    low, high = GPU_CLOCK_MHZ
    # elapsed_time patched to 0 reads as 2_000_000 cycles in 1e-3 us: clamped to the fastest clock
    assert plausible_cycles_per_us(2_000_000 / 1e-3) == high
    assert plausible_cycles_per_us(0.0) == low
    assert plausible_cycles_per_us(1980.0) == 1980.0  # an H200 at boost clock is left as measured
