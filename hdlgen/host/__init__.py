"""The host side of the board link: the frame protocol, the serial-port driver, the simulated board."""
