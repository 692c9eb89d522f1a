"""Boards and the link's host side: the registry takes its pins from amaranth-boards, the frame
format is what docs/board.md says (CRC-16/CCITT as binascii computes it), and settings that cannot
work are refused with the way out."""

import binascii

import pytest

from hdlgen.backends.bitstream import uart_divisor
from hdlgen.boards import board_names, get_board
from hdlgen.errors import HdlgenError
from hdlgen.host.protocol import link_frames_per_second, parse_reply, reply, request
from hdlgen.shell.core import LinkFormat
from hdlgen.targets import target_names

LINK = LinkFormat(in_bits=12, in_beats=3, out_bits=4, out_beats=1)


def test_every_board_has_an_amaranth_boards_platform_with_its_uart_and_a_known_target():
    assert {"ulx3s-85f", "ulx3s-25f", "icebreaker", "orangecrab-85f", "arty-a7-35"} <= set(board_names())
    for name in board_names():
        board = get_board(name)
        platform = board.platform_class()()
        assert board.target in target_names()
        if "resource" in board.uart:
            assert platform.lookup(board.uart["resource"], 0) is not None
        else:
            assert tuple(board.uart["connector"]) in platform.connectors
        assert platform.default_clk_frequency > 0


def test_unknown_board_names_the_boards():
    with pytest.raises(HdlgenError, match="unknown board 'ulx3s'; the boards are .*icebreaker"):
        get_board("ulx3s")


def test_a_request_is_sync_sequence_beats_in_whole_bytes_and_crc():
    data = request(LINK, 7, [0xABC, 0x001, 0xFFF])
    body = bytes([7, 0xBC, 0x0A, 0x01, 0x00, 0xFF, 0x0F])
    assert data == bytes([0xA5]) + body + binascii.crc_hqx(body, 0xFFFF).to_bytes(2, "big")
    with pytest.raises(ValueError, match="3 input beats"):
        request(LINK, 0, [1, 2])


def test_a_reply_with_a_wrong_byte_anywhere_is_not_taken():
    good = reply(LINK, 200, [9])
    assert parse_reply(LINK, good) == (200, [9])
    for k in range(len(good)):
        bad = bytearray(good)
        bad[k] ^= 0x04
        assert parse_reply(LINK, bytes(bad)) is None


def test_baud_rates_a_clock_cannot_make_are_refused():
    assert uart_divisor(12e6, 115200) == 104
    with pytest.raises(HdlgenError, match="too fast"):
        uart_divisor(12e6, 4_000_000)
    with pytest.raises(HdlgenError, match="off at 1 MHz"):
        uart_divisor(1e6, 150_000)


def test_the_link_rate_counts_request_and_reply_bytes():
    assert link_frames_per_second(LINK, 115200) == pytest.approx(11520 / ((4 + 6) + (4 + 1)))


@pytest.mark.parametrize("name", board_names())
def test_every_board_shell_prepares_with_its_uart_pins_and_clock(name):
    """Amaranth's platform flow prepares each board's shell (no tool runs): the constraints place rx and
    tx on the pins amaranth-boards names, and a shell clock other than the oscillator comes from the PLL."""
    from hdlgen.shell.board import BoardTop

    board = get_board(name)
    platform = board.platform_class()()
    family = {"ecp5-85k": "ecp5", "ecp5-25k": "ecp5", "ice40-up5k": "ice40"}.get(board.target, "xilinx")
    pll_hz = board.clock_mhz * 1e6 if board.clock_mhz else None
    top = BoardTop(uart=board.uart, family=family, toplevel="network", link=LINK, divisor=104, timeout=5000,
                   pll_hz=pll_hz)
    plan = platform.prepare(top, name="hdlgen_board")
    constraints = next(text for file, text in plan.files.items() if file.endswith((".lpf", ".pcf", ".xdc")))
    if "resource" in board.uart:
        uart = platform.lookup(board.uart["resource"], 0)
        pins = {sub.name: sub.ios[0].names[0] for sub in uart.ios if sub.name in ("rx", "tx")}
    else:
        conn = platform.connectors[tuple(board.uart["connector"])]
        pins = {"rx": conn.mapping[board.uart["rx"]], "tx": conn.mapping[board.uart["tx"]]}
    for pin in pins.values():
        assert pin in constraints
    design = next(text for file, text in plan.files.items() if file.endswith((".il", "hdlgen_board.v")))
    assert ("hdlgen_pll" in design) == (pll_hz is not None)
