"""Board shells: the UART link and frame protocol around a build's network, and the boards it runs on."""
