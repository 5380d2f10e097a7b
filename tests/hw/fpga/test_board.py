"""The board build's facts without place and route: the clock definition, the PLL it
derives, the UART divider, the dead-man timer's cycles a microsecond, and the pins and
primitives the board's platform emits."""

from __future__ import annotations

import re

import pytest
from nanoquote.hw.contract.coefficients import CLOCK_HZ, CYCLES_PER_US, clock_cycles_per_us
from nanoquote.hw.fpga.board_build import NAME, board_platform
from nanoquote.hw.gateware.board import (
    BOARD_CLOCK,
    SIM_CYCLES_PER_BIT,
    BoardClock,
    BoardCore,
    BoardTop,
    pll_settings,
)
from nanoquote.sim.testbenches.amaranth_support import inspected_only


def test_the_pll_makes_the_design_clock_from_the_oscillator():
    pll = BOARD_CLOCK.pll
    assert (pll.clki_div, pll.clkfb_div, pll.clkop_div) == (1, 10, 5)
    assert pll.output_hz == BOARD_CLOCK.design_hz == 120e6 and pll.vco_hz == 600e6
    for output in (100e6, 150e6, 48e6):
        s = pll_settings(12e6, output)
        assert s.output_hz == output and 400e6 <= s.vco_hz <= 800e6 and 3.125e6 <= 12e6 / s.clki_div
    with pytest.raises(ValueError, match="no EHXPLLL setting"):
        pll_settings(12e6, 1e9)


def test_the_uart_divider_is_exact():
    assert BOARD_CLOCK.cycles_per_bit == 40 and BOARD_CLOCK.baud_error == 0
    with pytest.raises(ValueError, match=r"100 MHz / 33 is \+1.01% off 3000000 baud"):
        BoardClock(design_hz=100e6).check()


def test_the_dead_man_timer_counts_the_design_clock():
    """The board's top counts the 120 MHz design clock's cycles a microsecond (derived from
    the clock definition), not the 200 MHz build's; a clock of another whole number of MHz
    gives its own, one that is not a whole number of MHz is refused."""
    assert BOARD_CLOCK.cycles_per_us == BOARD_CLOCK.design_hz / 1e6 == 120 != CYCLES_PER_US
    with inspected_only():
        assert BoardTop().core.top.cycles_per_us == BOARD_CLOCK.cycles_per_us
        assert BoardCore(SIM_CYCLES_PER_BIT).top.cycles_per_us == BOARD_CLOCK.cycles_per_us  # the simulated board's
        assert BoardTop(BoardClock(design_hz=96e6)).core.top.cycles_per_us == 96
    assert clock_cycles_per_us(CLOCK_HZ) == CYCLES_PER_US == 200
    for hz in (100.5e6, 0, 999_999):
        with pytest.raises(ValueError, match="not a whole number of cycles a microsecond"):
            clock_cycles_per_us(hz)
    with inspected_only(), pytest.raises(ValueError, match="not a whole number of cycles a microsecond"):
        BoardCore(SIM_CYCLES_PER_BIT, clock=BoardClock(design_hz=100.5e6))


def test_the_board_platform_places_the_pins_and_the_pll():
    plan = board_platform().prepare(BoardTop(), name=NAME)
    lpf = plan.files[f"{NAME}.lpf"]
    sites = dict(re.findall(r'LOCATE COMP "(\w+?)(?:_0)?__io" SITE "(\w+)"', lpf))
    assert sites["clk12"] == "A10" and sites["rst"] == "G2"
    assert re.search(r'LOCATE COMP "uart_0__rx__io" SITE "P2"', lpf)
    assert re.search(r'LOCATE COMP "uart_0__tx__io" SITE "P3"', lpf)
    leds = re.findall(r'LOCATE COMP "led_\d__io" SITE "(\w+)"', lpf)
    assert leds == "A13 A12 B19 A18 B18 C17 A17 B17".split()
    assert 'FREQUENCY PORT "clk12_0__io" 12000000' in lpf
    rtlil = plan.files[f"{NAME}.il"]
    rtlil = rtlil if isinstance(rtlil, str) else rtlil.decode()
    cell = rtlil[rtlil.index("cell \\EHXPLLL"):]
    cell = cell[:cell.index("end")]
    for parameter, value in (("CLKI_DIV", 1), ("CLKFB_DIV", 10), ("CLKOP_DIV", 5)):
        assert re.search(rf"parameter \\{parameter} {value}\b", cell), cell
