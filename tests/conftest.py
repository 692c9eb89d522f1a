import os

import numpy as np
import pytest


@pytest.fixture
def rng(request):
    """A generator seeded from the test id, so every test is reproducible; the seed is in the failure output."""
    seed = int.from_bytes(request.node.nodeid.encode(), "little") % (2**32)
    print(f"seed {seed}")
    return np.random.default_rng(seed)


@pytest.fixture(scope="session")
def sim_root(tmp_path_factory):
    """Where Verilator builds go; HDLGEN_SIM_ROOT keeps them between runs."""
    root = os.environ.get("HDLGEN_SIM_ROOT")
    return tmp_path_factory.mktemp("sim") if not root else __import__("pathlib").Path(root)
