"""Verilog emission, simulation on Verilator, synthesis with Yosys and nextpnr."""
